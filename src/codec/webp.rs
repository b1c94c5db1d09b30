//! WebP encoding through libwebp's advanced API (`libwebp-sys`, built from
//! its bundled source with SSE4.1 and threads).
//!
//! The frame goes to libwebp as it is: RGBA, or for opaque images the same
//! buffer read as RGBX (the fourth byte ignored), so no RGB copy is made.
//! A lossy picture is held by libwebp as YUV only; no ARGB copy of the
//! frame is made (the simpler wrappers build one, for the same bitstream).
//! The encoded bytes are written straight into a Rust `Vec`.
//!
//! `thread_level` 1 lets libwebp analyse the two halves of the picture on
//! two threads, which changes no output byte (a unit test checks that).
//! libwebp allocates through the process allocator, so its buffers are
//! overwritten when freed like every other (see the binary's allocator
//! module).

use std::ffi::{c_int, c_void};

use image::RgbaImage;
use libwebp_sys as sys;

/// Encoder settings beyond libwebp's defaults (method 4, its default
/// filtering and segments, as `cwebp` and libvips use).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WebpOptions {
    /// Lossless (VP8L) instead of lossy (VP8).
    pub lossless: bool,
    /// Quality 0..=100 (for lossless, the effort spent on compression).
    pub quality: f32,
    /// Let libwebp use a second thread (the output is the same).
    pub threads: bool,
}

/// libwebp's worker, as `src/utils/thread_utils.h` declares it.
#[cfg(test)]
#[repr(C)]
struct Worker {
    imp: *mut c_void,
    status: c_int,
    hook: Option<unsafe extern "C" fn(*mut c_void, *mut c_void) -> c_int>,
    data1: *mut c_void,
    data2: *mut c_void,
    had_error: c_int,
}

/// libwebp's worker methods (`WebPWorkerInterface`), in declaration order.
#[cfg(test)]
#[repr(C)]
struct WorkerInterface {
    init: unsafe extern "C" fn(*mut Worker),
    reset: unsafe extern "C" fn(*mut Worker) -> c_int,
    sync: unsafe extern "C" fn(*mut Worker) -> c_int,
    launch: unsafe extern "C" fn(*mut Worker),
    execute: unsafe extern "C" fn(*mut Worker),
    end: unsafe extern "C" fn(*mut Worker),
}

#[cfg(test)]
unsafe extern "C" {
    fn WebPGetWorkerInterface() -> *const WorkerInterface;
}

/// Whether libwebp was compiled with threads (`WEBP_USE_THREAD`, set for
/// every C build in `.cargo/config.toml`): without them `thread_level` is
/// ignored. A threaded worker starts a thread, and keeps its state behind
/// `impl_`, when it is reset; an unthreaded one leaves `impl_` null.
#[cfg(test)]
fn libwebp_has_threads() -> bool {
    // SAFETY: the interface is libwebp's static table; the worker is used
    // as thread_utils.h prescribes (Init, Reset, End) and is not moved
    // in between.
    unsafe {
        let api = &*WebPGetWorkerInterface();
        let mut w = std::mem::MaybeUninit::<Worker>::zeroed();
        (api.init)(w.as_mut_ptr());
        let started = (api.reset)(w.as_mut_ptr()) != 0;
        let threaded = started && !(*w.as_ptr()).imp.is_null();
        (api.end)(w.as_mut_ptr());
        threaded
    }
}

/// Appends libwebp's output to the `Vec<u8>` behind the picture's
/// `custom_ptr`.
unsafe extern "C" fn write_to_vec(
    data: *const u8,
    size: usize,
    picture: *const sys::WebPPicture,
) -> c_int {
    if size == 0 {
        return 1;
    }
    // SAFETY: `encode` points `custom_ptr` at a live `Vec<u8>` that nothing
    // else touches while `WebPEncode` runs; libwebp passes `size` readable
    // bytes at `data`.
    let (out, chunk) = unsafe {
        (
            &mut *(*picture).custom_ptr.cast::<Vec<u8>>(),
            std::slice::from_raw_parts(data, size),
        )
    };
    out.extend_from_slice(chunk);
    1
}

/// A libwebp picture whose buffers are freed however the encode ends.
struct Picture(sys::WebPPicture);

impl Drop for Picture {
    fn drop(&mut self) {
        // SAFETY: the picture was initialised by `WebPPictureInit`; freeing
        // an unallocated picture is allowed.
        unsafe { sys::WebPPictureFree(&mut self.0) };
    }
}

/// Encode `img` as WebP. `opaque` says every alpha byte is 255, so the
/// alpha plane is neither read nor written. Errors are libwebp's status
/// (for example a side over 16383 pixels).
pub fn encode(img: &RgbaImage, opaque: bool, opts: WebpOptions) -> Result<Vec<u8>, String> {
    let (w, h) = img.dimensions();
    let side = |v: u32| c_int::try_from(v).map_err(|_| format!("{v} pixels is too large"));
    let (width, height, stride) = (side(w)?, side(h)?, side(w.saturating_mul(4))?);

    let mut config =
        sys::WebPConfig::new().map_err(|()| "libwebp's configuration did not initialise")?;
    config.lossless = c_int::from(opts.lossless);
    config.alpha_compression = c_int::from(!opts.lossless);
    config.quality = opts.quality;
    config.thread_level = c_int::from(opts.threads);
    // SAFETY: `config` is an initialised configuration.
    if unsafe { sys::WebPValidateConfig(&config) } == 0 {
        return Err(format!("invalid configuration (quality {})", opts.quality));
    }

    let mut pic =
        Picture(sys::WebPPicture::new().map_err(|()| "libwebp's picture did not initialise")?);
    pic.0.width = width;
    pic.0.height = height;
    // Lossless works on ARGB; lossy on YUV(A), converted once on import.
    pic.0.use_argb = c_int::from(opts.lossless);
    let pixels = img.as_raw().as_ptr();
    // SAFETY: `pixels` holds `height` rows of `stride` bytes (an RgbaImage
    // is exactly 4 * width * height bytes); libwebp copies them.
    let imported = unsafe {
        if opaque {
            sys::WebPPictureImportRGBX(&mut pic.0, pixels, stride)
        } else {
            sys::WebPPictureImportRGBA(&mut pic.0, pixels, stride)
        }
    };
    if imported == 0 {
        return Err(format!("import failed: {:?}", pic.0.error_code));
    }

    let mut out: Vec<u8> = Vec::new();
    pic.0.writer = Some(write_to_vec);
    pic.0.custom_ptr = (&mut out as *mut Vec<u8>).cast::<c_void>();
    // SAFETY: `config` is valid, `pic` holds the imported image, and the
    // writer's target `out` outlives the call.
    let ok = unsafe { sys::WebPEncode(&config, &mut pic.0) };
    pic.0.custom_ptr = std::ptr::null_mut();
    if ok == 0 {
        return Err(format!("{:?}", pic.0.error_code));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A textured test frame: smooth gradients, a hard edge and noise, so
    /// that the encoder's analysis has real decisions to make.
    fn frame(w: u32, h: u32, alpha: bool) -> RgbaImage {
        let mut seed = 0x2545_f491_u32;
        RgbaImage::from_fn(w, h, |x, y| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let n = (seed & 31) as u8;
            let edge = if x > w / 3 { 90 } else { 0 };
            // Never fully transparent: lossless WebP may rewrite the colour
            // of invisible pixels.
            let a = if alpha {
                (1 + x * 254 / w.max(1)) as u8
            } else {
                255
            };
            image::Rgba([
                ((x * 200 / w.max(1)) as u8).wrapping_add(n),
                ((y * 180 / h.max(1)) as u8).saturating_add(edge),
                (((x + y) * 7) % 256) as u8,
                a,
            ])
        })
    }

    fn lossy(threads: bool) -> WebpOptions {
        WebpOptions {
            lossless: false,
            quality: 80.0,
            threads,
        }
    }

    /// libwebp's one-call API, the reference for the same settings.
    fn reference(img: &RgbaImage, opaque: bool, quality: f32) -> Vec<u8> {
        let (w, h) = img.dimensions();
        let mut out = std::ptr::null_mut();
        let len = unsafe {
            if opaque {
                let rgb: Vec<u8> = img
                    .as_raw()
                    .chunks_exact(4)
                    .flat_map(|p| [p[0], p[1], p[2]])
                    .collect();
                sys::WebPEncodeRGB(
                    rgb.as_ptr(),
                    w as c_int,
                    h as c_int,
                    (w * 3) as c_int,
                    quality,
                    &mut out,
                )
            } else {
                sys::WebPEncodeRGBA(
                    img.as_raw().as_ptr(),
                    w as c_int,
                    h as c_int,
                    (w * 4) as c_int,
                    quality,
                    &mut out,
                )
            }
        };
        assert!(len > 0, "WebPEncode failed");
        let bytes = unsafe { std::slice::from_raw_parts(out, len) }.to_vec();
        unsafe { sys::WebPFree(out.cast()) };
        bytes
    }

    #[test]
    fn lossy_output_is_libwebps_own_bit_for_bit() {
        for (w, h) in [(1, 1), (17, 9), (300, 211)] {
            for alpha in [false, true] {
                let img = frame(w, h, alpha);
                let ours = encode(&img, !alpha, lossy(false)).unwrap();
                assert_eq!(ours, reference(&img, !alpha, 80.0), "{w}x{h} alpha={alpha}");
            }
        }
    }

    #[test]
    fn libwebp_is_built_with_threads() {
        assert!(
            libwebp_has_threads(),
            "libwebp was built without WEBP_USE_THREAD: is CFLAGS set in the environment, \
             overriding .cargo/config.toml?"
        );
    }

    #[test]
    fn a_second_thread_changes_no_byte() {
        // Tall enough that libwebp splits its analysis into two halves.
        for alpha in [false, true] {
            let img = frame(320, 480, alpha);
            assert_eq!(
                encode(&img, !alpha, lossy(true)).unwrap(),
                encode(&img, !alpha, lossy(false)).unwrap(),
                "alpha={alpha}"
            );
        }
    }

    #[test]
    fn lossless_round_trips_exactly() {
        for alpha in [false, true] {
            let img = frame(64, 48, alpha);
            let opts = WebpOptions {
                lossless: true,
                quality: 75.0,
                threads: true,
            };
            let bytes = encode(&img, !alpha, opts).unwrap();
            let back = image::load_from_memory_with_format(&bytes, image::ImageFormat::WebP)
                .unwrap()
                .to_rgba8();
            assert_eq!(back, img, "alpha={alpha}");
        }
    }

    #[test]
    fn an_oversized_side_is_an_error_not_a_crash() {
        let img = RgbaImage::new(16_384, 1);
        let err = encode(&img, true, lossy(true)).unwrap_err();
        assert!(err.contains("BAD_DIMENSION"), "{err}");
    }
}
