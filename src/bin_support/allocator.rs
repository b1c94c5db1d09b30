//! The process allocator and its policy. It must live in the binary: the
//! library and its tests keep the system allocator.

/// jemalloc is the allocator of the whole process: Rust's allocations and,
/// through its unprefixed `malloc`/`free`, those of the C code linked in
/// (libwebp), where every freed block is overwritten (`junk:free`, set
/// below). Rust's allocations go through `ZeroizeAlloc` on top, which zeroes
/// each block as it is freed and grows blocks by allocate-copy-free, so that
/// no moved-from copy is left behind either. Source bytes, pixel buffers and
/// encoded outputs leave nothing in the heap once a job drops them.
#[global_allocator]
static ALLOCATOR: secmem_alloc::zeroizing_alloc::ZeroizeAlloc<tikv_jemallocator::Jemalloc> =
    secmem_alloc::zeroizing_alloc::ZeroizeAlloc::new(tikv_jemallocator::Jemalloc);

/// jemalloc's compiled-in options (`MALLOC_CONF` can add to them): overwrite
/// freed memory, and hand unused pages back to the kernel promptly. Its
/// memory is asked for as transparent huge pages (`thp:always`, which only
/// advises the kernel): a progressive JPEG's decoder reads and writes a
/// coefficient buffer of 3 bytes per pixel all over, and with 4 KiB pages
/// the page faults and TLB misses make it markedly slower (BENCHMARKS.md,
/// "Allocator settings"). One arena (`narenas:1`) keeps the huge pages'
/// slack to one set: a job's few large buffers gain nothing from more.
#[allow(non_upper_case_globals)]
#[unsafe(no_mangle)]
pub static malloc_conf: Option<&'static u8> =
    Some(&b"junk:free,dirty_decay_ms:1000,muzzy_decay_ms:0,thp:always,narenas:1\0"[0]);
