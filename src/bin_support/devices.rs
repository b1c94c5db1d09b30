//! `imgworker devices`: every GPU adapter with its key limits, and which
//! backend `auto` would pick, and why.

use anyhow::Result;

/// Print the adapters as a table, or as JSON with `json`.
pub fn print(json: bool) -> Result<()> {
    let instance = imgworker::gpu::instance();
    let reports: Vec<_> = imgworker::gpu::adapters(&instance)
        .iter()
        .map(imgworker::gpu::report)
        .collect();
    let decision = imgworker::backend::auto_decision(&reports);
    if json {
        let doc = serde_json::json!({ "adapters": reports, "auto": decision });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    if reports.is_empty() {
        println!("no Vulkan adapter found (install a GPU driver, or Mesa's software driver: apt-get install mesa-vulkan-drivers libvulkan1)");
    }
    for (i, a) in reports.iter().enumerate() {
        println!("adapter {i}: {}", a.name);
        println!("  backend:       {}", a.backend);
        println!(
            "  device type:   {}{}",
            a.device_type,
            if a.software { " (software)" } else { "" }
        );
        println!("  driver:        {} {}", a.driver, a.driver_info);
        println!(
            "  max storage binding: {} MiB, max buffer: {} MiB, max workgroups per dimension: {}",
            a.max_storage_buffer_binding_size >> 20,
            a.max_buffer_size >> 20,
            a.max_compute_workgroups_per_dimension
        );
    }
    println!(
        "auto: {}{} ({})",
        decision.backend,
        decision
            .adapter
            .as_deref()
            .map(|a| format!(" on {a}"))
            .unwrap_or_default(),
        decision.reason
    );
    Ok(())
}
