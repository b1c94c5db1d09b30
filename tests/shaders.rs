//! The WGSL sources, checked without a device: every module parses and
//! validates with naga (the compiler inside wgpu), every entry point the
//! backend dispatches exists, and each op's shader is named after the op.

use imgworker::gpu::shaders::{module_source, ENTRY_POINTS, MODULES};
use imgworker::ops::OP_NAMES;

fn validate(name: &str) -> naga::Module {
    let src = module_source(name).expect("listed module");
    let module = naga::front::wgsl::parse_str(&src)
        .unwrap_or_else(|e| panic!("shader module {name}: {}", e.emit_to_string(&src)));
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    )
    .validate(&module)
    .unwrap_or_else(|e| panic!("shader module {name} does not validate: {e:?}"));
    module
}

#[test]
fn every_module_parses_and_validates() {
    for (name, _) in MODULES {
        validate(name);
    }
}

#[test]
fn every_entry_point_exists_in_its_module() {
    for (entry, module) in ENTRY_POINTS {
        let m = validate(module);
        let ep = m
            .entry_points
            .iter()
            .find(|e| e.name == *entry)
            .unwrap_or_else(|| panic!("entry point {entry} missing from module {module}"));
        assert_eq!(ep.stage, naga::ShaderStage::Compute, "{entry}");
        assert_eq!(ep.workgroup_size, [8, 8, 1], "{entry}");
    }
}

#[test]
fn each_op_has_a_shader_named_after_it() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let stems: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wgsl"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    // auto_orient reuses rotate.wgsl's remap kernel.
    for op in OP_NAMES.iter().filter(|o| **o != "auto_orient") {
        assert!(stems.iter().any(|s| s == op), "no shaders/{op}.wgsl");
    }
    // Anything else is a documented helper.
    for s in &stems {
        assert!(
            OP_NAMES.contains(&s.as_str()) || ["common", "point"].contains(&s.as_str()),
            "shaders/{s}.wgsl is neither an op nor a known helper"
        );
    }
    // Every file is built into some module.
    for s in stems.iter().filter(|s| *s != "common") {
        let body = std::fs::read_to_string(dir.join(format!("{s}.wgsl"))).unwrap();
        assert!(
            MODULES
                .iter()
                .any(|(_, files)| files.iter().any(|f| *f == body)),
            "shaders/{s}.wgsl is not part of any module"
        );
    }
}
