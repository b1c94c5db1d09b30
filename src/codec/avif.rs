//! AVIF encoding through libheif with libaom (Debian's `libheif1`), the
//! encoder libvips' `heifsave` uses: 8-bit YCbCr 4:2:0 (BT.601 matrix, full
//! range), alpha as an auxiliary image, the version's ICC profile in a
//! `colr` box and EXIF as an item.
//!
//! The libheif-rs wrapper cannot attach an ICC profile (it passes the
//! profile type without the NUL its C string needs), so this module calls
//! libheif's C API directly; every handle is released by a guard.

use std::ffi::{c_void, CStr};
use std::ptr;

use crate::job::ChromaSubsampling;
use image::RgbaImage;
use libheif_sys as lh;

/// AVIF encoder settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AvifOptions {
    /// libheif's quality, 1..=100 (libaom's quantiser, inverted).
    pub quality: u8,
    /// imgworker's speed, 1 (slowest) ..= 10 (fastest): libaom's
    /// `cpu-used` 0..=9.
    pub speed: u8,
    /// Chroma subsampling.
    pub chroma: ChromaSubsampling,
    /// Encoder threads.
    pub threads: usize,
}

/// A libheif error as text.
fn check(e: lh::heif_error, what: &str) -> Result<(), String> {
    if e.code == lh::heif_error_code_heif_error_Ok {
        return Ok(());
    }
    let msg = if e.message.is_null() {
        String::new()
    } else {
        // SAFETY: libheif's messages are static NUL-terminated strings.
        unsafe { CStr::from_ptr(e.message) }
            .to_string_lossy()
            .into_owned()
    };
    Err(format!("{what}: {msg} (libheif error {})", e.code))
}

/// Releases a libheif object with its free function when dropped.
struct Guard<T> {
    ptr: *mut T,
    free: unsafe extern "C" fn(*mut T),
}

impl<T> Drop for Guard<T> {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: `ptr` came from the libheif allocator `free` belongs to
            // and is released once.
            unsafe { (self.free)(self.ptr) }
        }
    }
}

unsafe extern "C" fn free_context(p: *mut lh::heif_context) {
    unsafe { lh::heif_context_free(p) }
}
unsafe extern "C" fn free_encoder(p: *mut lh::heif_encoder) {
    unsafe { lh::heif_encoder_release(p) }
}
unsafe extern "C" fn free_image(p: *mut lh::heif_image) {
    unsafe { lh::heif_image_release(p) }
}
unsafe extern "C" fn free_handle(p: *mut lh::heif_image_handle) {
    unsafe { lh::heif_image_handle_release(p) }
}
unsafe extern "C" fn free_options(p: *mut lh::heif_encoding_options) {
    unsafe { lh::heif_encoding_options_free(p) }
}

/// libheif's writer callback: appends to the `Vec<u8>` behind `userdata`.
unsafe extern "C" fn write_to_vec(
    _ctx: *mut lh::heif_context,
    data: *const c_void,
    size: usize,
    userdata: *mut c_void,
) -> lh::heif_error {
    // SAFETY: `userdata` is the `&mut Vec<u8>` given to `heif_context_write`,
    // and `data` holds `size` bytes for the duration of the call.
    if size > 0 && !data.is_null() && !userdata.is_null() {
        unsafe {
            let out = &mut *(userdata as *mut Vec<u8>);
            out.extend_from_slice(std::slice::from_raw_parts(data as *const u8, size));
        }
    }
    lh::heif_error {
        code: lh::heif_error_code_heif_error_Ok,
        subcode: lh::heif_suberror_code_heif_suberror_Unspecified,
        message: c"ok".as_ptr(),
    }
}

/// Initialise libheif once for the process (its plugins, the AV1 encoder
/// among them, are registered there; lazy registration races when several
/// threads encode at once). Never deinitialised.
fn init() {
    static INIT: std::sync::Once = std::sync::Once::new();
    // SAFETY: `heif_init` accepts null parameters and is called once.
    INIT.call_once(|| unsafe {
        lh::heif_init(ptr::null_mut());
    });
}

/// Encode an RGBA image as AVIF; `opaque` images get no alpha plane.
pub(crate) fn encode(
    img: &RgbaImage,
    opaque: bool,
    opts: AvifOptions,
    icc: Option<&[u8]>,
    exif: Option<&[u8]>,
) -> Result<Vec<u8>, String> {
    let (w, h) = img.dimensions();
    let (width, height) = (
        i32::try_from(w).map_err(|_| "too wide")?,
        i32::try_from(h).map_err(|_| "too high")?,
    );
    let channels = if opaque { 3 } else { 4 };
    init();
    // SAFETY: every pointer below comes from libheif, is checked for null
    // or an error before use, and is released by its guard; the plane is
    // written within `stride * height` bytes as libheif reports them.
    unsafe {
        let ctx = Guard {
            ptr: lh::heif_context_alloc(),
            free: free_context,
        };
        if ctx.ptr.is_null() {
            return Err("libheif could not allocate a context".into());
        }
        let mut encoder = Guard {
            ptr: ptr::null_mut(),
            free: free_encoder,
        };
        check(
            lh::heif_context_get_encoder_for_format(
                ctx.ptr,
                lh::heif_compression_format_heif_compression_AV1,
                &mut encoder.ptr,
            ),
            "no AV1 encoder in libheif",
        )?;
        check(
            lh::heif_encoder_set_lossy_quality(encoder.ptr, i32::from(opts.quality)),
            "quality",
        )?;
        let speed = i32::from(opts.speed.clamp(1, 10)) - 1;
        check(
            lh::heif_encoder_set_parameter_integer(encoder.ptr, c"speed".as_ptr(), speed),
            "speed",
        )?;
        check(
            lh::heif_encoder_set_parameter_string(
                encoder.ptr,
                c"chroma".as_ptr(),
                match opts.chroma {
                    ChromaSubsampling::Full => c"444",
                    ChromaSubsampling::Half => c"422",
                    ChromaSubsampling::Quarter => c"420",
                }
                .as_ptr(),
            ),
            "chroma",
        )?;
        let threads = i32::try_from(opts.threads.clamp(1, 64)).unwrap_or(1);
        check(
            lh::heif_encoder_set_parameter_integer(encoder.ptr, c"threads".as_ptr(), threads),
            "threads",
        )?;

        let chroma = if opaque {
            lh::heif_chroma_heif_chroma_interleaved_RGB
        } else {
            lh::heif_chroma_heif_chroma_interleaved_RGBA
        };
        let mut image = Guard {
            ptr: ptr::null_mut(),
            free: free_image,
        };
        check(
            lh::heif_image_create(
                width,
                height,
                lh::heif_colorspace_heif_colorspace_RGB,
                chroma,
                &mut image.ptr,
            ),
            "image",
        )?;
        check(
            lh::heif_image_add_plane(
                image.ptr,
                lh::heif_channel_heif_channel_interleaved,
                width,
                height,
                8,
            ),
            "plane",
        )?;
        let mut stride = 0i32;
        let plane = lh::heif_image_get_plane(
            image.ptr,
            lh::heif_channel_heif_channel_interleaved,
            &mut stride,
        );
        let stride = usize::try_from(stride).unwrap_or(0);
        let row = w as usize * channels;
        if plane.is_null() || stride < row {
            return Err("libheif gave no usable plane".into());
        }
        let dst = std::slice::from_raw_parts_mut(plane, stride * h as usize);
        for (line, src) in dst
            .chunks_mut(stride)
            .zip(img.as_raw().chunks_exact(w as usize * 4))
        {
            if opaque {
                for (d, s) in line[..row].chunks_exact_mut(3).zip(src.chunks_exact(4)) {
                    d.copy_from_slice(&s[..3]);
                }
            } else {
                line[..row].copy_from_slice(src);
            }
        }
        if let Some(icc) = icc {
            check(
                lh::heif_image_set_raw_color_profile(
                    image.ptr,
                    c"prof".as_ptr(),
                    icc.as_ptr() as *const c_void,
                    icc.len(),
                ),
                "ICC profile",
            )?;
        }

        let options = Guard {
            ptr: lh::heif_encoding_options_alloc(),
            free: free_options,
        };
        if options.ptr.is_null() {
            return Err("libheif could not allocate encoding options".into());
        }
        (*options.ptr).save_alpha_channel = u8::from(!opaque);
        let mut handle = Guard {
            ptr: ptr::null_mut(),
            free: free_handle,
        };
        check(
            lh::heif_context_encode_image(
                ctx.ptr,
                image.ptr,
                encoder.ptr,
                options.ptr,
                &mut handle.ptr,
            ),
            "encoding",
        )?;
        if let Some(exif) = exif {
            let len = i32::try_from(exif.len()).map_err(|_| "EXIF block too large")?;
            check(
                lh::heif_context_add_exif_metadata(
                    ctx.ptr,
                    handle.ptr,
                    exif.as_ptr() as *const c_void,
                    len,
                ),
                "EXIF",
            )?;
        }
        let mut out: Vec<u8> = Vec::new();
        let mut writer = lh::heif_writer {
            writer_api_version: 1,
            write: Some(write_to_vec),
        };
        check(
            lh::heif_context_write(
                ctx.ptr,
                &mut writer,
                &mut out as *mut Vec<u8> as *mut c_void,
            ),
            "writing",
        )?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture(w: u32, h: u32, alpha: bool) -> RgbaImage {
        RgbaImage::from_fn(w, h, |x, y| {
            let a = if alpha { (x * 255 / w) as u8 } else { 255 };
            image::Rgba([(x * 255 / w) as u8, (y * 255 / h) as u8, 90, a])
        })
    }

    fn decode(bytes: &[u8]) -> (RgbaImage, Option<Vec<u8>>) {
        let img = crate::codec::heif::decode(bytes).unwrap();
        let icc = crate::codec::heif::header(bytes).unwrap().icc;
        (img, icc)
    }

    #[test]
    fn encodes_what_libheif_decodes_back() {
        let opts = AvifOptions {
            quality: 90,
            speed: 8,
            chroma: ChromaSubsampling::Quarter,
            threads: 2,
        };
        for alpha in [false, true] {
            let img = picture(67, 41, alpha);
            let out = encode(&img, !alpha, opts, None, None).unwrap();
            assert_eq!(&out[4..12], b"ftypavif");
            let (back, icc) = decode(&out);
            assert_eq!(back.dimensions(), (67, 41));
            assert_eq!(icc, None);
            let worst = back
                .as_raw()
                .iter()
                .zip(img.as_raw())
                .map(|(a, b)| a.abs_diff(*b))
                .max()
                .unwrap();
            assert!(worst <= 24, "alpha {alpha}: worst {worst}");
        }
    }

    #[test]
    fn the_icc_profile_is_written() {
        let icc = moxcms::ColorProfile::new_display_p3().encode().unwrap();
        let opts = AvifOptions {
            quality: 60,
            speed: 10,
            chroma: ChromaSubsampling::Quarter,
            threads: 1,
        };
        let out = encode(&picture(16, 16, false), true, opts, Some(&icc), None).unwrap();
        assert_eq!(decode(&out).1.as_deref(), Some(&icc[..]));
    }

    #[test]
    fn speed_and_quality_change_the_encoding() {
        let img = picture(128, 96, false);
        let enc = |quality, speed| {
            let opts = AvifOptions {
                quality,
                speed,
                chroma: ChromaSubsampling::Quarter,
                threads: 1,
            };
            encode(&img, true, opts, None, None).unwrap()
        };
        assert!(enc(90, 10).len() > enc(20, 10).len());
        // A slower speed searches harder: a different encoding.
        assert_ne!(enc(60, 3), enc(60, 10));
    }

    /// The AV1 sequence profile and chroma subsampling flags (x, y) that
    /// the file's `av1C` box declares.
    fn av1c(avif: &[u8]) -> (u8, bool, bool) {
        let at = avif
            .windows(4)
            .position(|w| w == b"av1C")
            .expect("an av1C box")
            + 4;
        let (profile, flags) = (avif[at + 1] >> 5, avif[at + 2]);
        (profile, flags & 0b1000 != 0, flags & 0b100 != 0)
    }

    #[test]
    fn chroma_subsampling_is_the_one_asked_for() {
        let img = picture(64, 48, false);
        for (chroma, want) in [
            (ChromaSubsampling::Quarter, (0, true, true)),
            (ChromaSubsampling::Half, (2, true, false)),
            (ChromaSubsampling::Full, (1, false, false)),
        ] {
            let opts = AvifOptions {
                quality: 60,
                speed: 10,
                chroma,
                threads: 1,
            };
            let out = encode(&img, true, opts, None, None).unwrap();
            assert_eq!(av1c(&out), want, "{chroma:?}");
            assert_eq!(decode(&out).0.dimensions(), (64, 48));
        }
    }
}
