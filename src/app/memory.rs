//! This process's memory as the kernel reports it in `/proc`: the peak
//! resident size (`VmHWM`), read and reset. `imgworker bench` measures jobs
//! with it, and the tests check that refused images were never decoded.

/// `VmHWM` (peak resident size, KiB) from the text of a `/proc/PID/status`
/// file; `None` when it has none (a zombie process has no memory left).
pub(crate) fn vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// This process's peak resident size in bytes, since it started or since
/// the last [`reset_peak_rss`]; `None` where `/proc` is not available.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    vm_hwm_kib(&status).map(|kib| kib * 1024)
}

/// Reset this process's peak resident size, so that the next reading covers
/// only what follows. Where the kernel refuses, the next reading still
/// covers the whole run so far: an upper bound.
#[cfg(feature = "bench")]
pub(crate) fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_hwm_is_read_from_a_status_text() {
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmHWM:\t    1234 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(vm_hwm_kib(status), Some(1234));
        assert_eq!(vm_hwm_kib("Name:\tzombie\nState:\tZ\n"), None);
    }

    #[test]
    fn this_process_has_a_peak_that_grows_with_touched_memory() {
        let before = peak_rss_bytes().expect("Linux has /proc/self/status");
        assert!(before > 0);
        let block = vec![1u8; 64 << 20];
        std::hint::black_box(&block);
        let after = peak_rss_bytes().unwrap();
        assert!(after >= before, "{after} < {before}");
        assert!(
            after >= 64 << 20,
            "64 MiB were touched but the peak is {after}"
        );
    }
}
