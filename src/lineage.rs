//! Re-edits from the original: following a version's manifests back to the
//! object its lineage starts from, and composing the recorded recipes with
//! a job's own ops into one edit of that original.
//!
//! Every version's manifest records its recipe and, through
//! `parent_recipe`, the recipes back to the object the chain started from
//! (an object without a manifest: the upload). A job with
//! `"from": "original"` is rendered from that object with every recipe's
//! ops in order, then its own: one decode, one encode, instead of one more
//! generation of lossy encoding on top of the source's.
//!
//! The walk trusts nothing it cannot check:
//! - the source must have a manifest that describes it, and its stored bytes
//!   must hash to the manifest's `sha256` (an object changed outside
//!   imgworker is not what its recipe says);
//! - where the recorded chain ends at an object that has a manifest of its
//!   own (its lineage was not recorded when the chain was), that object is
//!   checked the same way and its chain continues the walk;
//! - an object met twice at such a junction is a cycle.
//!
//! Each failure is `broken_lineage`, with a message naming the object.
//! A chain longer than [`MAX_RECIPES`] is `limit_exceeded`.
//!
//! Orientation and EXIF follow what the versions in between did: a version
//! that stripped EXIF also dropped the EXIF orientation, so an
//! `auto_orient` in a later recipe had nothing to apply and is left out of
//! the composed chain; an output that keeps EXIF keeps the original's only
//! when every version in between kept it.

use crate::config::WorkerConfig;
use crate::error::JobError;
use crate::job::Edit;
use crate::keys::{ImageId, ObjectName};
use crate::manifest::{Manifest, Recipe};
use crate::ops::{Op, OpSpec};

/// Most recipes a render from the original composes.
pub(crate) const MAX_RECIPES: usize = 64;

/// The recorded recipes from an original to a version.
#[derive(Debug, Clone, PartialEq)]
pub struct Lineage {
    /// The object the chain starts from.
    pub root: ObjectName,
    /// The recipes in the order they were applied, oldest first.
    pub(crate) recipes: Vec<Recipe>,
    /// The source's own recipe as its manifest holds it (its chain in
    /// `parent_recipe`): the parent recipe of the version being made.
    pub(crate) source_recipe: Recipe,
}

/// What a step of the walk found for one object.
#[derive(Debug)]
pub enum Found {
    /// The object has no manifest: the chain starts here.
    NoManifest,
    /// Its manifest and the SHA-256 of its stored bytes.
    Manifest(Box<Manifest>, String),
}

/// Follow manifests from `source` back to its original. `lookup` reads an
/// object's manifest (and hashes its bytes) or says it has none.
pub async fn walk<F, Fut>(source: &ObjectName, mut lookup: F) -> Result<Lineage, JobError>
where
    F: FnMut(ObjectName) -> Fut,
    Fut: std::future::Future<Output = Result<Found, JobError>>,
{
    let mut current = source.clone();
    let mut seen: Vec<ObjectName> = Vec::new();
    let mut recipes: Vec<Recipe> = Vec::new();
    let mut source_recipe: Option<Recipe> = None;
    loop {
        let (manifest, sha256) = match lookup(current.clone()).await? {
            Found::Manifest(m, sha) => (m, sha),
            Found::NoManifest if source_recipe.is_none() => {
                return Err(JobError::broken_lineage(format!(
                    "{} has no manifest: only a version imgworker wrote can be rendered from its original",
                    current.as_str()
                )));
            }
            Found::NoManifest => {
                return Ok(Lineage {
                    root: current,
                    recipes,
                    source_recipe: source_recipe.expect("the source's manifest was read"),
                });
            }
        };
        if manifest.object != current.as_str() {
            return Err(JobError::broken_lineage(format!(
                "the manifest of {} describes {}",
                current.as_str(),
                manifest.object
            )));
        }
        if manifest.sha256 != sha256 {
            return Err(JobError::broken_lineage(format!(
                "{} was changed outside imgworker: its bytes do not match its manifest",
                current.as_str()
            )));
        }
        seen.push(current.clone());
        source_recipe.get_or_insert_with(|| manifest.recipe.clone());
        let chain: Vec<Recipe> = manifest
            .recipe
            .lineage()
            .into_iter()
            .map(|r| Recipe {
                parent_recipe: None,
                ..r.clone()
            })
            .collect();
        let start = chain[0].parent.clone();
        recipes.splice(0..0, chain);
        if recipes.len() > MAX_RECIPES {
            return Err(JobError::limit_exceeded(format!(
                "{}'s lineage holds more than {MAX_RECIPES} recipes",
                source.as_str()
            )));
        }
        let start = ObjectName::parse(&start).map_err(|e| {
            JobError::broken_lineage(format!(
                "the lineage of {} names {start:?}, not an object: {}",
                current.as_str(),
                e.message
            ))
        })?;
        if seen.contains(&start) {
            return Err(JobError::broken_lineage(format!(
                "the manifests form a cycle: {} leads back to {}",
                current.as_str(),
                start.as_str()
            )));
        }
        current = start;
    }
}

/// The edit of `lineage.root` that renders every recorded recipe, then
/// `edit`'s own ops, in one pass; its outputs are `edit`'s. Ops that read
/// other objects (a composite's image, a LUT, a mask) read them again.
pub fn compose(
    image: &ImageId,
    edit: &Edit,
    lineage: &Lineage,
    cfg: &WorkerConfig,
) -> Result<Edit, JobError> {
    let mut specs: Vec<OpSpec> = Vec::new();
    let mut oriented_or_stripped = false;
    for recipe in &lineage.recipes {
        for spec in &recipe.ops {
            // See the module docs: after a version that applied or dropped
            // the orientation, an auto_orient has nothing left to apply.
            if spec.name() == "auto_orient" && oriented_or_stripped {
                continue;
            }
            specs.push(spec.clone());
        }
        oriented_or_stripped |=
            !recipe.output.keep_exif || recipe.ops.iter().any(|s| s.name() == "auto_orient");
    }
    let mut ops: Vec<Op> = specs
        .iter()
        .map(|s| {
            s.validate(&cfg.limits).map_err(|e| {
                JobError::from(e.at(&format!("the recipe chain of {}", edit.source.as_str())))
            })
        })
        .collect::<Result<_, _>>()?;
    ops.extend(edit.ops.iter().cloned());
    specs.extend(edit.specs.iter().cloned());
    let mut composed = Edit {
        source: lineage.root.clone(),
        ops,
        specs,
        outputs: edit.outputs.clone(),
        overlays: Vec::new(),
        luts: Vec::new(),
        masks: Vec::new(),
        from: crate::job::RenderFrom::Source,
        color: edit.color,
        source_exif: edit.source_exif && lineage.recipes.iter().all(|r| r.output.keep_exif),
        digital_source_type: edit.digital_source_type,
    };
    composed.resolve_inputs(image, cfg)?;
    Ok(composed)
}
