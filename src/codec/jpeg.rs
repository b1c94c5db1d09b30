//! JPEG through libjpeg-turbo (the `turbojpeg` crate, built from its bundled
//! source with SIMD): the fastest well-kept JPEG codec, and the one libvips
//! and Pillow use. Decoding can scale in the DCT domain (1/2, 1/4, 1/8), so a
//! large downscale starts from a smaller image ("shrink-on-load").
//!
//! libjpeg-turbo allocates through the process allocator, so its buffers are
//! overwritten when freed like every other (see the binary's allocator module).

use image::RgbaImage;
use turbojpeg::{Colorspace, Compressor, Decompressor, Image, PixelFormat, ScalingFactor, Subsamp};

use crate::error::JobError;
use crate::job::{ChromaSubsampling, JpegSettings};

/// Progressive scans allowed in one source: real files have about ten; a
/// crafted file with thousands makes decoding take minutes.
pub(crate) const MAX_SCANS: u32 = 500;

/// DCT-domain shrink factors libjpeg-turbo decodes at, largest first.
const SHRINKS: [u32; 3] = [8, 4, 2];

/// The shrink-on-load factor for a resize that shrinks by `shrink` (the
/// smaller of its two axes' factors): libvips' rule, which leaves at least a
/// factor of two to the resize itself, so that the filter still does the
/// final, visible step (a DCT-scaled image alone is blockier and sharper).
pub(crate) fn load_shrink(shrink: f64) -> u32 {
    SHRINKS
        .into_iter()
        .find(|&s| shrink >= f64::from(2 * s))
        .unwrap_or(1)
}

/// The size a JPEG of `width` x `height` decodes to at 1/`shrink`.
#[cfg(test)]
fn shrunk_dims(width: u32, height: u32, shrink: u32) -> (u32, u32) {
    (width.div_ceil(shrink), height.div_ceil(shrink))
}

/// Decode into RGBA8 at 1/`shrink` of the stored size (`shrink` 1, 2, 4
/// or 8). `Ok(None)` when libjpeg-turbo cannot give RGB for this file (CMYK
/// and YCCK JPEGs), so that the caller can use another decoder. Warnings
/// (corrupt data that libjpeg would paper over) are errors.
pub fn decode(bytes: &[u8], shrink: u32) -> Result<Option<RgbaImage>, turbojpeg::Error> {
    let mut d = Decompressor::new()?;
    d.set_scan_limit(MAX_SCANS)?;
    let header = d.read_header(bytes)?;
    if matches!(header.colorspace, Colorspace::CMYK | Colorspace::YCCK) {
        return Ok(None);
    }
    let scale = ScalingFactor::new(1, shrink as usize);
    if shrink > 1 {
        d.set_scaling_factor(scale)?;
    }
    let header = header.scaled(scale);
    let (w, h) = (header.width, header.height);
    let mut pixels = vec![0u8; 4 * w * h];
    d.decompress(
        bytes,
        Image {
            pixels: pixels.as_mut_slice(),
            width: w,
            pitch: 4 * w,
            height: h,
            format: PixelFormat::RGBA,
        },
    )?;
    Ok(RgbaImage::from_raw(w as u32, h as u32, pixels))
}

/// Encode at `quality` (1..=100) with `settings`. `pixels` is RGBA (alpha
/// ignored) or RGB.
pub fn encode(
    pixels: &[u8],
    width: u32,
    height: u32,
    rgba: bool,
    quality: u8,
    settings: &JpegSettings,
) -> Result<Vec<u8>, JobError> {
    let failed = |e: turbojpeg::Error| JobError::internal(format!("jpg encoding failed: {e}"));
    let mut c = Compressor::new().map_err(failed)?;
    c.set_quality(i32::from(quality)).map_err(failed)?;
    c.set_subsamp(match settings.chroma_subsampling {
        ChromaSubsampling::Full => Subsamp::None,
        ChromaSubsampling::Half => Subsamp::Sub2x1,
        ChromaSubsampling::Quarter => Subsamp::Sub2x2,
    })
    .map_err(failed)?;
    c.set_progressive(settings.progressive).map_err(failed)?;
    c.set_optimize(settings.optimize_coding).map_err(failed)?;
    let (format, bpp) = if rgba {
        (PixelFormat::RGBA, 4)
    } else {
        (PixelFormat::RGB, 3)
    };
    let (w, h) = (width as usize, height as usize);
    c.compress_to_vec(Image {
        pixels,
        width: w,
        pitch: bpp * w,
        height: h,
        format,
    })
    .map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> RgbaImage {
        RgbaImage::from_fn(w, h, |x, y| {
            image::Rgba([(x * 255 / w) as u8, (y * 255 / h) as u8, 128, 255])
        })
    }

    #[test]
    fn load_shrink_leaves_the_resize_a_factor_of_two() {
        assert_eq!(load_shrink(1.0), 1);
        assert_eq!(load_shrink(2.0), 1);
        assert_eq!(load_shrink(3.9), 1);
        assert_eq!(load_shrink(4.0), 2);
        assert_eq!(load_shrink(15.0), 4);
        assert_eq!(load_shrink(16.0), 8);
        assert_eq!(load_shrink(100.0), 8);
    }

    #[test]
    fn round_trip_is_close_and_shrinking_gives_the_expected_size() {
        let img = gradient(320, 200);
        let jpeg = encode(img.as_raw(), 320, 200, true, 90, &JpegSettings::default()).unwrap();
        let back = decode(&jpeg, 1).unwrap().unwrap();
        assert_eq!(back.dimensions(), (320, 200));
        let max_diff = img
            .as_raw()
            .iter()
            .zip(back.as_raw())
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(max_diff <= 8, "max difference {max_diff}");
        for s in [2, 4, 8] {
            let small = decode(&jpeg, s).unwrap().unwrap();
            assert_eq!(small.dimensions(), shrunk_dims(320, 200, s));
            // A smooth gradient scales to the same gradient.
            let p = small.get_pixel(small.width() / 2, small.height() / 2);
            let q = img.get_pixel(160, 100);
            assert!(p[0].abs_diff(q[0]) <= 10 && p[1].abs_diff(q[1]) <= 10);
        }
    }

    #[test]
    fn garbage_after_the_header_is_an_error() {
        let img = gradient(64, 64);
        let mut jpeg = encode(img.as_raw(), 64, 64, true, 85, &JpegSettings::default()).unwrap();
        let n = jpeg.len();
        for b in &mut jpeg[n / 2..n - 2] {
            *b = 0xFF;
        }
        assert!(decode(&jpeg, 1).is_err());
    }

    /// The start-of-frame marker, the first component's sampling factors
    /// (high nibble horizontal) and the Huffman table segments of a JPEG,
    /// read from its markers.
    fn markers(jpeg: &[u8]) -> (u8, u8, Vec<Vec<u8>>) {
        let (mut sof, mut sampling, mut dht) = (0, 0, Vec::new());
        let mut i = 2;
        while i + 4 <= jpeg.len() && jpeg[i] == 0xFF {
            let marker = jpeg[i + 1];
            let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
            let body = &jpeg[i + 4..i + 2 + len];
            match marker {
                0xC0..=0xC2 => (sof, sampling) = (marker, body[7]),
                0xC4 => dht.push(body.to_vec()),
                0xDA => break,
                _ => {}
            }
            i += 2 + len;
        }
        (sof, sampling, dht)
    }

    #[test]
    fn settings_show_in_the_written_markers() {
        let img = RgbaImage::from_fn(96, 64, |x, y| {
            let n = (x * 7919 + y * 104_729) % 61;
            image::Rgba([(x * 2 + n) as u8, (y * 3) as u8, (n * 4) as u8, 255])
        });
        let enc =
            |settings: JpegSettings| encode(img.as_raw(), 96, 64, true, 85, &settings).unwrap();
        let plain = enc(JpegSettings::default());
        let (sof, sampling, standard_tables) = markers(&plain);
        assert_eq!((sof, sampling), (0xC0, 0x22), "baseline 4:2:0 by default");
        for (chroma, factors) in [
            (ChromaSubsampling::Full, 0x11),
            (ChromaSubsampling::Half, 0x21),
            (ChromaSubsampling::Quarter, 0x22),
        ] {
            let jpeg = enc(JpegSettings {
                chroma_subsampling: chroma,
                ..Default::default()
            });
            assert_eq!(markers(&jpeg).1, factors, "{chroma:?}");
        }
        let progressive = enc(JpegSettings {
            progressive: true,
            ..Default::default()
        });
        assert_eq!(markers(&progressive).0, 0xC2, "progressive frames are SOF2");
        let optimized = enc(JpegSettings {
            optimize_coding: true,
            ..Default::default()
        });
        let (sof, _, tables) = markers(&optimized);
        assert_eq!(sof, 0xC0);
        assert_ne!(
            tables, standard_tables,
            "the Huffman tables are the image's own"
        );
        assert!(
            optimized.len() < plain.len(),
            "{} >= {}",
            optimized.len(),
            plain.len()
        );
        for jpeg in [&progressive, &optimized] {
            let back = decode(jpeg, 1).unwrap().unwrap();
            assert_eq!(back.dimensions(), (96, 64));
        }
    }
}
