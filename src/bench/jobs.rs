//! The standard job set of `imgworker bench`: what each job does, as
//! imgworker ops and as the same work for each peer tool.

use serde_json::{json, Value};

use crate::job::Format;

/// One standard job, defined for a source of `width` x `height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandardJob {
    /// Thumbnail to this width (Lanczos3), JPEG q85.
    Thumbnail(u32),
    /// Lanczos3 resize to half the width and height, JPEG q85.
    ResizeHalf,
    /// Gaussian blur, sigma 5, at full size, JPEG q85.
    Blur,
    /// Textbook unsharp mask (sigma 1, amount 1, threshold 0) at full size.
    Unsharp,
    /// Brightness +0.05, contrast 1.1, saturation 1.2 at full size.
    Colour,
    /// Crop the middle 5/6, rotate 90, resize to 60 %, sharpen (sigma 1,
    /// amount 0.6), grayscale.
    Chain,
    /// JPEG to WebP q80, no ops.
    ToWebp,
    /// JPEG to PNG, no ops (each tool's own PNG compression; the peers are
    /// asked for zlib level 6).
    ToPng,
    /// JPEG to JPEG q85, no ops: decode and encode alone, the baseline of
    /// the per-pixel jobs.
    Recode,
    /// A model's patch (half the width and height, opaque PNG) pasted in
    /// the middle through a soft full-size grey mask (PNG), JPEG q85.
    CompositeMask,
    /// Colour grading with a 33-point `.cube` 3D LUT, JPEG q85.
    Lut,
    /// Levels (black 0.04, white 0.96, gamma 1.1) then an S-shaped tone
    /// curve, fused in one pass, JPEG q85.
    LevelsCurves,
    /// Square thumbnail of this side cropped to the most interesting part
    /// (`gravity: attention`), JPEG q85.
    SmartCrop(u32),
    /// Thumbnail to this width (Lanczos3), AVIF at libvips' default
    /// quality (50) and each tool's default speed.
    AvifThumbnail(u32),
    /// JPEG to lossless WebP, no ops.
    ToWebpLossless,
    /// Thumbnail to this width as PNG: not a standard job, the lossless
    /// reference each tool's AVIF thumbnail is scored against.
    PngThumbnail(u32),
}

/// Every standard job, in the order they are reported.
pub const ALL: [StandardJob; 16] = [
    StandardJob::Thumbnail(1920),
    StandardJob::Thumbnail(256),
    StandardJob::ResizeHalf,
    StandardJob::Blur,
    StandardJob::Unsharp,
    StandardJob::Colour,
    StandardJob::Chain,
    StandardJob::ToWebp,
    StandardJob::ToPng,
    StandardJob::Recode,
    StandardJob::CompositeMask,
    StandardJob::Lut,
    StandardJob::LevelsCurves,
    StandardJob::SmartCrop(512),
    StandardJob::AvifThumbnail(1920),
    StandardJob::ToWebpLossless,
];

/// JPEG quality of every JPEG output.
pub const JPEG_QUALITY: u8 = 85;
/// WebP quality of the WebP job.
pub const WEBP_QUALITY: u8 = 80;
/// AVIF quality of the AVIF job: libvips' default `Q`, so that its peer
/// runs as a user runs `vips thumbnail ... out.avif`.
pub const AVIF_QUALITY: u8 = 50;
/// imgworker's settings for the AVIF job: full-resolution chroma at
/// quality 47. The quality scale is the peers' (libheif over libaom for
/// imgworker, libvips and ImageMagick alike); 4:4:4 spends the bits better
/// than the peers' 4:2:0 on this photo: a smaller file with a higher
/// SSIMULACRA2 score than libvips' Q50 (BENCHMARKS.md). Its cost is AVIF's
/// High profile (see the contract's `chroma_subsampling`).
pub const IMGWORKER_AVIF_QUALITY: u8 = 47;
/// The chroma subsampling of imgworker's AVIF job (see
/// [`IMGWORKER_AVIF_QUALITY`]).
pub const IMGWORKER_AVIF_CHROMA: &str = "4:4:4";
/// Gaussian blur sigma of the blur job.
pub(crate) const BLUR_SIGMA: f64 = 5.0;
/// The colour job's brightness (added, in 0..1 of full scale).
pub(crate) const BRIGHTNESS: f64 = 0.05;
/// The colour job's contrast (a factor around mid-grey).
pub(crate) const CONTRAST: f64 = 1.1;
/// The colour job's saturation (a factor on chroma).
pub(crate) const SATURATION: f64 = 1.2;

/// Side of the `.cube` grid of the LUT job.
pub(crate) const LUT_POINTS: usize = 33;

/// The levels of the levels+curves job.
pub(crate) fn levels_op() -> Value {
    json!({"op": "levels", "black": 0.04, "white": 0.96, "gamma": 1.1})
}

/// The tone curve of the levels+curves job.
pub(crate) fn curves_op() -> Value {
    json!({"op": "curves", "points": [[0, 0], [0.25, 0.2], [0.75, 0.82], [1, 1]]})
}

/// Where the composite job's patch goes and how big it is: the middle
/// quarter of the source, `(x, y, width, height)`.
pub(crate) fn patch_rect(width: u32, height: u32) -> (u32, u32, u32, u32) {
    let (w, h) = ((width / 2).max(1), (height / 2).max(1));
    ((width - w) / 2, (height - h) / 2, w, h)
}

/// The crop of the chain job: the middle 5/6 of the source.
pub(crate) fn chain_crop(width: u32, height: u32) -> (u32, u32, u32, u32) {
    let (w, h) = (width * 5 / 6, height * 5 / 6);
    ((width - w) / 2, (height - h) / 2, w, h)
}

/// The width the chain job resizes to (60 % of the rotated crop's width).
pub(crate) fn chain_width(width: u32, height: u32) -> u32 {
    let (_, _, _, h) = chain_crop(width, height);
    (h * 3 / 5).max(1)
}

impl StandardJob {
    /// Short stable name (used in tables, JSON and `--jobs`).
    pub fn name(self) -> String {
        match self {
            Self::Thumbnail(w) => format!("thumbnail-{w}"),
            Self::ResizeHalf => "resize-half".into(),
            Self::Blur => "blur-5".into(),
            Self::Unsharp => "unsharp".into(),
            Self::Colour => "colour".into(),
            Self::Chain => "chain".into(),
            Self::ToWebp => "jpeg-to-webp".into(),
            Self::ToPng => "jpeg-to-png".into(),
            Self::Recode => "jpeg-recode".into(),
            Self::CompositeMask => "composite-mask".into(),
            Self::Lut => "lut-33".into(),
            Self::LevelsCurves => "levels-curves".into(),
            Self::SmartCrop(side) => format!("smartcrop-{side}"),
            Self::AvifThumbnail(w) => format!("thumbnail-{w}-avif"),
            Self::ToWebpLossless => "jpeg-to-webp-lossless".into(),
            Self::PngThumbnail(w) => format!("thumbnail-{w}-png"),
        }
    }

    /// One line on what the job does.
    pub fn describe(self) -> String {
        match self {
            Self::Thumbnail(w) => format!("thumbnail to {w} wide, JPEG q85"),
            Self::ResizeHalf => "Lanczos3 resize to half size, JPEG q85".into(),
            Self::Blur => "Gaussian blur sigma 5, JPEG q85".into(),
            Self::Unsharp => "unsharp mask sigma 1 amount 1, JPEG q85".into(),
            Self::Colour => "brightness/contrast/saturation, JPEG q85".into(),
            Self::Chain => "crop, rotate 90, resize, sharpen, grayscale, JPEG q85".into(),
            Self::ToWebp => "JPEG to WebP q80".into(),
            Self::ToPng => "JPEG to PNG".into(),
            Self::Recode => "JPEG to JPEG q85, no ops".into(),
            Self::CompositeMask => "paste a patch through a soft mask, JPEG q85".into(),
            Self::Lut => "33-point 3D LUT grade, JPEG q85".into(),
            Self::LevelsCurves => "levels and a tone curve, JPEG q85".into(),
            Self::SmartCrop(side) => format!("{side}x{side} attention crop thumbnail, JPEG q85"),
            Self::AvifThumbnail(w) => format!(
                "thumbnail to {w} wide, AVIF (peers q{AVIF_QUALITY} 4:2:0; imgworker q{IMGWORKER_AVIF_QUALITY} {IMGWORKER_AVIF_CHROMA})"
            ),
            Self::ToWebpLossless => "JPEG to lossless WebP".into(),
            Self::PngThumbnail(w) => format!("thumbnail to {w} wide, PNG"),
        }
    }

    /// Output format.
    pub fn format(self) -> Format {
        match self {
            Self::ToWebp | Self::ToWebpLossless => Format::Webp,
            Self::ToPng | Self::PngThumbnail(_) => Format::Png,
            Self::AvifThumbnail(_) => Format::Avif,
            _ => Format::Jpeg,
        }
    }

    /// Whether the output is lossless WebP.
    pub fn lossless(self) -> bool {
        self == Self::ToWebpLossless
    }

    /// The lossless job a lossy output's quality is scored against (each
    /// tool's own rendering of the same ops), where the benchmark scores
    /// one.
    pub fn reference(self) -> Option<StandardJob> {
        match self {
            Self::AvifThumbnail(w) => Some(Self::PngThumbnail(w)),
            _ => None,
        }
    }

    /// Output quality, where the format has one.
    pub fn quality(self) -> Option<u8> {
        match self {
            Self::ToWebp => Some(WEBP_QUALITY),
            Self::AvifThumbnail(_) => Some(AVIF_QUALITY),
            Self::ToPng | Self::ToWebpLossless | Self::PngThumbnail(_) => None,
            _ => Some(JPEG_QUALITY),
        }
    }

    /// The imgworker ops for a source of `width` x `height`.
    pub fn ops(self, width: u32, height: u32) -> Value {
        match self {
            Self::Thumbnail(w) | Self::AvifThumbnail(w) | Self::PngThumbnail(w) => {
                json!([{"op": "resize", "width": w}])
            }
            Self::ResizeHalf => json!([{"op": "resize", "width": (width / 2).max(1),
                "height": (height / 2).max(1), "fit": "fill", "filter": "lanczos3"}]),
            Self::Blur => json!([{"op": "blur", "sigma": BLUR_SIGMA}]),
            Self::Unsharp => json!([{"op": "sharpen", "sigma": 1.0, "amount": 1.0}]),
            Self::Colour => {
                json!([{"op": "adjust", "brightness": BRIGHTNESS, "contrast": CONTRAST, "saturation": SATURATION}])
            }
            Self::Chain => {
                let (x, y, w, h) = chain_crop(width, height);
                json!([
                    {"op": "crop", "x": x, "y": y, "width": w, "height": h},
                    {"op": "rotate", "degrees": 90},
                    {"op": "resize", "width": chain_width(width, height)},
                    {"op": "sharpen", "sigma": 1.0, "amount": 0.6},
                    {"op": "grayscale"}
                ])
            }
            Self::ToWebp | Self::ToPng | Self::Recode | Self::ToWebpLossless => json!([]),
            Self::CompositeMask => {
                let (x, y, _, _) = patch_rect(width, height);
                json!([{"op": "composite", "source": "patch.png", "x": x, "y": y,
                    "mask": {"object": "mask.png"}}])
            }
            Self::Lut => json!([{"op": "lut", "object": "grade.cube"}]),
            Self::LevelsCurves => json!([levels_op(), curves_op()]),
            Self::SmartCrop(side) => json!([{"op": "resize", "width": side, "height": side,
                "fit": "cover", "gravity": "attention"}]),
        }
    }

    /// The objects the job reads besides the source, for a source of
    /// `width` x `height`, as `(object name, bytes)`: they are put beside
    /// the source for imgworker and the peers alike.
    pub fn inputs(self, width: u32, height: u32) -> Vec<(&'static str, Vec<u8>)> {
        match self {
            Self::CompositeMask => {
                let (_, _, w, h) = patch_rect(width, height);
                vec![
                    (
                        "patch.png",
                        png(&image::DynamicImage::ImageRgb8(patch(w, h))),
                    ),
                    (
                        "mask.png",
                        png(&image::DynamicImage::ImageLuma8(soft_mask(width, height))),
                    ),
                ]
            }
            Self::Lut => vec![("grade.cube", grade_cube(LUT_POINTS).into_bytes())],
            Self::LevelsCurves => vec![(
                "levels-curves.png",
                png(&image::DynamicImage::ImageRgb8(levels_curves_table())),
            )],
            _ => Vec::new(),
        }
    }

    /// A complete imgworker job message reading `{image}/original.jpg`
    /// and writing version `out`.
    pub fn message(self, id: &str, image: &str, width: u32, height: u32) -> Value {
        let mut output = json!({"version": "out", "format": self.format()});
        if let Some(q) = self.quality() {
            output["quality"] = json!(q);
        }
        if self.lossless() {
            output["lossless"] = json!(true);
        }
        if let Self::AvifThumbnail(_) = self {
            output["quality"] = json!(IMGWORKER_AVIF_QUALITY);
            output["chroma_subsampling"] = json!(IMGWORKER_AVIF_CHROMA);
        }
        json!({
            "schema": 1,
            "id": id,
            "type": "edit",
            "image": image,
            "source": "original.jpg",
            "ops": self.ops(width, height),
            "outputs": [output]
        })
    }

    /// Find a job by its [`name`](Self::name).
    pub fn by_name(name: &str) -> Option<Self> {
        ALL.into_iter().find(|j| j.name() == name)
    }
}

/// PNG bytes of an image (zlib's default level).
fn png(img: &image::DynamicImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("PNG encodes in memory");
    out.into_inner()
}

/// The composite job's patch: smooth colour gradients, as a generative
/// fill returns.
fn patch(w: u32, h: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        image::Rgb([
            (60.0 + 160.0 * fx) as u8,
            (200.0 - 120.0 * fy) as u8,
            (90.0 + 80.0 * fx * fy) as u8,
        ])
    })
}

/// The composite job's mask: a soft ellipse over the patch's rectangle,
/// 255 inside, falling to 0 over a tenth of the image's height.
pub(crate) fn soft_mask(width: u32, height: u32) -> image::GrayImage {
    let (x, y, w, h) = patch_rect(width, height);
    let (cx, cy) = (
        f64::from(x) + f64::from(w) / 2.0,
        f64::from(y) + f64::from(h) / 2.0,
    );
    let (rx, ry) = (f64::from(w) / 2.0, f64::from(h) / 2.0);
    let ramp = (f64::from(height) / 10.0).max(1.0);
    image::GrayImage::from_fn(width, height, |px, py| {
        let (dx, dy) = ((f64::from(px) - cx) / rx, (f64::from(py) - cy) / ry);
        // Distance outside the ellipse, in pixels (roughly).
        let out = ((dx * dx + dy * dy).sqrt() - 1.0) * rx.min(ry);
        image::Luma([(255.0 * (1.0 - out / ramp)).clamp(0.0, 255.0) as u8])
    })
}

/// The LUT job's grade as `.cube` text: a warm, slightly crossed grade
/// with every output channel depending on all three inputs.
pub fn grade_cube(n: usize) -> String {
    let mut text = format!("TITLE \"imgworker bench grade\"\nLUT_3D_SIZE {n}\n");
    let v = |i: usize| i as f64 / (n - 1) as f64;
    for b in 0..n {
        for g in 0..n {
            for r in 0..n {
                let (r, g, b) = (v(r), v(g), v(b));
                let out = [
                    (0.9 * r.powf(0.9) + 0.08 * g + 0.02).min(1.0),
                    0.85 * g.sqrt() * (0.9 + 0.1 * b) + 0.05 * r,
                    0.6 * b + 0.3 * r * g + 0.05,
                ];
                text.push_str(&format!("{:.6} {:.6} {:.6}\n", out[0], out[1], out[2]));
            }
        }
    }
    text
}

/// The levels+curves job as a 256-entry table per channel (a 256x1 RGB
/// image), computed by imgworker's own ops on a ramp: what a peer with a
/// table lookup (`maplut`, `point`, `-clut`) applies.
pub(crate) fn levels_curves_table() -> image::RgbImage {
    use crate::ops::{Frame, OpContext, OpSpec};
    let ramp =
        image::RgbaImage::from_fn(256, 1, |x, _| image::Rgba([x as u8, x as u8, x as u8, 255]));
    let lim = crate::config::Limits::default();
    let ops: Vec<_> = [levels_op(), curves_op()]
        .into_iter()
        .map(|v| {
            serde_json::from_value::<OpSpec>(v)
                .expect("a valid op")
                .validate(&lim)
                .expect("valid parameters")
        })
        .collect();
    let frame = Frame {
        img: ramp,
        orientation: 1,
    };
    let out = crate::ops::run_chain_cpu(frame, &ops, &OpContext::default())
        .expect("point ops run on a ramp");
    image::DynamicImage::ImageRgba8(out.img).into_rgb8()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found_again() {
        for j in ALL {
            assert_eq!(StandardJob::by_name(&j.name()), Some(j));
        }
        assert_eq!(StandardJob::by_name("nope"), None);
    }

    #[test]
    fn the_levels_curves_table_rises_and_the_cube_parses() {
        let t = levels_curves_table();
        let reds: Vec<u8> = t.pixels().map(|p| p.0[0]).collect();
        assert!(reds.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!((reds[0], reds[255]), (0, 255));
        let cube = grade_cube(LUT_POINTS);
        assert!(crate::ops::lut::Cube::parse("grade.cube", cube.as_bytes()).is_ok());
        let inputs = StandardJob::CompositeMask.inputs(64, 48);
        assert_eq!(inputs.len(), 2);
    }

    #[test]
    fn every_message_is_a_valid_job() {
        let cfg = crate::config::WorkerConfig::new();
        for j in ALL
            .into_iter()
            .chain(ALL.iter().filter_map(|j| j.reference()))
        {
            let body = serde_json::to_vec(&j.message("b", "bench/photo", 3840, 2160)).unwrap();
            let job = crate::job::Job::parse(&body, &cfg);
            assert!(job.is_ok(), "{}: {:?}", j.name(), job.err());
        }
    }

    #[test]
    fn the_chain_crops_the_middle_and_keeps_its_aspect() {
        assert_eq!(chain_crop(3840, 2160), (320, 180, 3200, 1800));
        assert_eq!(chain_width(3840, 2160), 1080);
    }
}
