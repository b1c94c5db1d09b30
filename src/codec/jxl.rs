//! JPEG XL sources through jxl-oxide (pure Rust): a bare codestream
//! (`FF 0A`) or the ISO BMFF container (`JXL ` signature box).
//!
//! The header is read first ([`header`]) without decoding any pixels, and
//! [`decode`] renders the first displayed frame (keyframe 0) only, as for
//! GIF: the rest of an animation is neither loaded nor rendered. Every
//! buffer jxl-oxide allocates goes through an [`AllocTracker`] capped at
//! [`Limits::max_decode_alloc`], raised in proportion to the header's pixel
//! count where jxl-oxide's f32 grids need more ([`alloc_cap`]), so a file
//! whose frames need more than its header suggests stops with
//! `limit_exceeded`.
//!
//! - **Orientation.** The codestream's orientation (the JPEG XL header
//!   field, 1..=8 with EXIF's meaning) is applied by jxl-oxide while
//!   rendering (`Render::stream`), as the format asks of every decoder. The
//!   size the limits are checked against is the displayed one, after that
//!   turn; the probe reports orientation 1 (`auto_orient` finds nothing
//!   left to do), as for HEIF ([`super::heif`]); an EXIF block handed on has
//!   its orientation tag reset to 1.
//! - **Samples.** jxl-oxide renders f32 samples; they are clamped to 0..=1
//!   and rounded to 8 bits (not truncated), whatever the stored depth (8 to
//!   16 bits integer, or float). Greyscale widens to RGB. Alpha is straight:
//!   an image whose alpha channel is marked premultiplied (associated) is
//!   unpremultiplied here.
//! - **Colour.** The pixels come in the colour space jxl-oxide renders to
//!   by default: the image's own (its enumerated colour encoding or its
//!   embedded ICC profile), or sRGB for an XYB-coded (lossy) image whose
//!   ICC profile jxl-oxide cannot map to an enumerated encoding. The ICC
//!   profile returned always describes the rendered pixels
//!   (`JxlImage::rendered_icc`); for a greyscale image it is a grey profile,
//!   as a greyscale PNG's would be. CMYK (a black channel) is
//!   `unsupported_format`: it cannot be rendered without a colour engine.
//! - **Boxes.** Of a container, only the signature, `ftyp`, `jxll` and
//!   codestream (`jxlc`, `jxlp`) boxes are given to jxl-oxide. Metadata
//!   boxes are skipped: jxl-oxide would inflate a Brotli-compressed box
//!   (`brob`) without any bound, so a small file could hold a decompression
//!   bomb. For the same reason [`exif`] returns only an uncompressed `Exif`
//!   box; a `brob`-compressed one (what cjxl writes when it recompresses a
//!   JPEG) is not carried over.

use image::RgbaImage;
use jxl_oxide::{AllocTracker, InitializeResult, JxlImage, UninitializedJxlImage};

use crate::config::Limits;
use crate::error::JobError;

/// The container's signature box.
const CONTAINER_SIG: [u8; 12] = [
    0, 0, 0, 0x0C, b'J', b'X', b'L', b' ', 0x0D, 0x0A, 0x87, 0x0A,
];
/// A bare codestream's signature.
const CODESTREAM_SIG: [u8; 2] = [0xFF, 0x0A];
/// Container boxes given to jxl-oxide; every other box is skipped.
const KEPT_BOXES: [&[u8; 4]; 5] = [b"JXL ", b"ftyp", b"jxll", b"jxlc", b"jxlp"];
/// Bytes fed to jxl-oxide at a time when decoding: feeding stops once the
/// first frame is loaded.
const CHUNK: usize = 64 << 10;

/// Whether `bytes` start like a JPEG XL file (bare codestream or container).
pub(crate) fn sniff(bytes: &[u8]) -> bool {
    bytes.starts_with(&CODESTREAM_SIG) || bytes.starts_with(&CONTAINER_SIG)
}

/// What the header says, before any pixel buffer exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    /// Displayed width: after the codestream's orientation, which decoding
    /// applies.
    pub width: u32,
    /// Displayed height.
    pub height: u32,
    /// The codestream's orientation (EXIF's 1..=8), applied in decoding.
    pub orientation: u8,
    /// Bits per stored colour sample (1..=32).
    pub bits: u32,
    /// Whether the samples are floating point.
    pub float: bool,
    /// Whether the image has an alpha channel.
    pub has_alpha: bool,
    /// Whether that alpha is premultiplied (associated) in the file.
    pub premultiplied: bool,
    /// Whether the colour is greyscale (one channel, widened to RGB).
    pub grey: bool,
    /// Whether the image is CMYK (has a black channel): not supported.
    pub cmyk: bool,
    /// Displayed frames: `Some(1)` for a still image, `None` for an
    /// animation (counting its frames means reading all of them).
    pub frames: Option<u32>,
    /// The colour description of the pixels [`decode`] returns.
    pub colour: Colour,
}

/// The colour description of the rendered pixels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Colour {
    /// The ICC profile describing the rendered pixels: the embedded one for
    /// a non-XYB image, else one made from the CICP code points, else
    /// jxl-oxide's `rendered_icc`.
    pub icc: Vec<u8>,
    /// The CICP tag (primaries, transfer, matrix, full range) of the
    /// rendered colour encoding, where it has one.
    pub cicp: Option<[u8; 4]>,
    /// Whether the file embeds an ICC profile (rather than an enumerated
    /// colour encoding).
    pub embedded_icc: bool,
    /// Whether the image is XYB-coded (lossy VarDCT with colour
    /// transform), rendered to RGB by jxl-oxide.
    pub xyb: bool,
    /// Whether the transfer function is an HDR one (PQ or HLG).
    pub hdr: bool,
}

fn failed(what: &str, e: impl std::fmt::Display) -> JobError {
    JobError::decode_failed(format!("source is not a valid JPEG XL ({what}): {e}"))
}

/// Map a jxl-oxide error to the contract's codes: a refused allocation (the
/// tracker's cap, or a buffer too large to exist) is `limit_exceeded`, a
/// feature jxl-oxide does not render is `unsupported_format`, anything else
/// (corrupt or truncated data) `decode_failed`.
fn map_err(what: &str, lim: &Limits, e: &(dyn std::error::Error + 'static)) -> JobError {
    let mut chain = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        chain.push(err.to_string());
        cur = err.source();
    }
    if chain
        .iter()
        .any(|m| m.contains("failed to allocate") || m.contains("out of memory"))
    {
        return JobError::limit_exceeded(format!(
            "decoding the JPEG XL source would allocate more than {} bytes",
            lim.max_decode_alloc()
        ));
    }
    if chain.iter().any(|m| m.contains("not supported")) {
        return JobError::unsupported_format(format!("unsupported JPEG XL variant: {e}"));
    }
    failed(what, e)
}

/// The byte ranges of a file handed to jxl-oxide: a bare codestream whole;
/// of a container, the boxes in [`KEPT_BOXES`].
fn parts(bytes: &[u8]) -> Result<Vec<&[u8]>, JobError> {
    if !bytes.starts_with(&CONTAINER_SIG) {
        return Ok(vec![bytes]);
    }
    let mut out = Vec::new();
    for b in boxes(bytes)? {
        if KEPT_BOXES.contains(&&b.kind) {
            out.push(b.whole);
        }
    }
    Ok(out)
}

/// One box of a container.
struct Bmff<'a> {
    /// Its type.
    kind: [u8; 4],
    /// The whole box, header included.
    whole: &'a [u8],
    /// Its payload.
    payload: &'a [u8],
}

/// A container's boxes. A box that
/// declares more bytes than the file has left is a truncated file, even
/// where the codestream inside happens to be complete (as a JPEG without
/// its end marker is refused); a box header cut short ends the list, and
/// jxl-oxide then finds the codestream incomplete.
fn boxes(bytes: &[u8]) -> Result<Vec<Bmff<'_>>, JobError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while bytes.len() - at >= 8 {
        let b = &bytes[at..];
        let kind: [u8; 4] = b[4..8].try_into().expect("4 bytes");
        let (size, header) = match u32::from_be_bytes(b[..4].try_into().expect("4 bytes")) {
            // To the end of the file.
            0 => (b.len() as u64, 8),
            // A 64-bit size follows the type.
            1 => match b.get(8..16) {
                Some(s) => (u64::from_be_bytes(s.try_into().expect("8 bytes")), 16),
                None => break,
            },
            n => (u64::from(n), 8),
        };
        if size < header as u64 {
            return Err(failed(
                "container",
                format!("box of {size} bytes is smaller than its header"),
            ));
        }
        if size > b.len() as u64 {
            return Err(failed(
                "container",
                format!(
                    "truncated: a box of {size} bytes with {} left in the file",
                    b.len()
                ),
            ));
        }
        let end = size as usize;
        out.push(Bmff {
            kind,
            whole: &b[..end],
            payload: &b[header..end],
        });
        at += end;
    }
    Ok(out)
}

/// jxl-oxide's decoder, before and after its header is read.
enum Stage {
    Uninit(UninitializedJxlImage),
    Init(Box<JxlImage>),
}

impl Stage {
    fn feed(&mut self, buf: &[u8]) -> jxl_oxide::Result<usize> {
        match self {
            Self::Uninit(u) => u.feed_bytes(buf),
            Self::Init(i) => i.feed_bytes(buf),
        }
    }
}

/// Bytes jxl-oxide's buffers take per pixel at most, measured on cjxl's
/// files (1 to 6 MP): 12 to 17 for lossless 8-bit, 24 to 28 for lossy,
/// 32 for 16-bit RGBA; with a margin. Its grids are f32 or i32 per channel.
const BYTES_PER_PIXEL: u64 = 40;

/// What one JPEG XL decode may allocate through jxl-oxide: the limit every
/// decoder gets ([`Limits::max_decode_alloc`]), raised for an image whose
/// header declares more pixels than that covers at jxl-oxide's working
/// size ([`BYTES_PER_PIXEL`]), plus the codestream it keeps, so that any
/// source within the pixel limit decodes. The header's size is itself
/// checked against the limits first.
fn alloc_cap(lim: &Limits, pixels: u64, bytes: usize) -> u64 {
    let needed = pixels
        .saturating_mul(BYTES_PER_PIXEL)
        .saturating_add(bytes as u64)
        .saturating_add(64 << 20);
    lim.max_decode_alloc().max(needed)
}

/// A decoder whose allocations go through `tracker`.
fn decoder(tracker: &AllocTracker) -> UninitializedJxlImage {
    JxlImage::builder()
        .alloc_tracker(tracker.clone())
        .build_uninit()
}

/// A tracker capped at the limit every decoder gets.
fn tracker(lim: &Limits) -> AllocTracker {
    AllocTracker::with_limit(usize::try_from(lim.max_decode_alloc()).unwrap_or(usize::MAX))
}

/// Feed `chunk` to `stage`. jxl-oxide leaves unconsumed what it cannot
/// parse yet (a box header cut between chunks); that is kept in `pending`
/// and fed again in front of the next chunk.
fn feed(
    stage: &mut Option<Stage>,
    pending: &mut Vec<u8>,
    chunk: &[u8],
    lim: &Limits,
) -> Result<(), JobError> {
    let s = stage.as_mut().expect("a decoder stage");
    if pending.is_empty() {
        let used = s.feed(chunk).map_err(|e| map_err("container", lim, &*e))?;
        pending.extend_from_slice(&chunk[used..]);
    } else {
        pending.extend_from_slice(chunk);
        let used = s
            .feed(pending)
            .map_err(|e| map_err("container", lim, &*e))?;
        pending.drain(..used);
    }
    Ok(())
}

/// The first `len` bytes of `parts`, in slices.
fn prefix<'b>(parts: &[&'b [u8]], mut len: usize) -> Vec<&'b [u8]> {
    let mut out = Vec::new();
    for part in parts {
        if len == 0 {
            break;
        }
        let n = part.len().min(len);
        out.push(&part[..n]);
        len -= n;
    }
    out
}

/// A fresh decoder fed the first `len` bytes of `parts`: `Some` once its
/// header is read, `None` when the header needs more bytes.
fn init_prefix(parts: &[&[u8]], len: usize, lim: &Limits) -> Result<Option<JxlImage>, JobError> {
    let mut stage = Some(Stage::Uninit(decoder(&tracker(lim))));
    let mut pending = Vec::new();
    for chunk in prefix(parts, len) {
        feed(&mut stage, &mut pending, chunk, lim)?;
    }
    let Some(Stage::Uninit(u)) = stage else {
        unreachable!("an uninitialised decoder")
    };
    match u.try_init().map_err(|e| map_err("header", lim, &*e))? {
        InitializeResult::NeedMoreData(_) => Ok(None),
        InitializeResult::Initialized(image) => Ok(Some(image)),
    }
}

/// A decoder that has read the header and nothing much beyond it.
///
/// jxl-oxide reads the header and then goes on into the frames in the bytes
/// it was given, failing on a broken frame before the header could be
/// checked against the limits. So the header is read from growing prefixes
/// (256 bytes, then four times more each time); when a prefix fails, the
/// shortest prefix that does not need more bytes is found by bisection:
/// it holds the whole header and too little of a frame to fail on, so the
/// header is judged on its own. Only a broken header fails here.
fn open_header(bytes: &[u8], lim: &Limits) -> Result<JxlImage, JobError> {
    let parts = parts(bytes)?;
    let total: usize = parts.iter().map(|p| p.len()).sum();
    // The longest prefix known to need more bytes.
    let mut short = 0;
    let mut len = total.min(256);
    loop {
        match init_prefix(&parts, len, lim) {
            Ok(Some(image)) => return Ok(image),
            Ok(None) if len == total => {
                return Err(failed("header", "the data ends inside the image header"))
            }
            Ok(None) => {
                short = len;
                len = len.saturating_mul(4).min(total);
            }
            Err(mut err) => {
                let mut long = len;
                while long - short > 1 {
                    let mid = short + (long - short) / 2;
                    match init_prefix(&parts, mid, lim) {
                        Ok(Some(image)) => return Ok(image),
                        Ok(None) => short = mid,
                        Err(e) => {
                            err = e;
                            long = mid;
                        }
                    }
                }
                return Err(err);
            }
        }
    }
}

/// A decoder fed the file chunk by chunk until its first frame is loaded
/// (the rest of an animation is not read) or the data ends.
fn open(bytes: &[u8], lim: &Limits) -> Result<JxlImage, JobError> {
    let tracker = tracker(lim);
    let mut stage = Some(Stage::Uninit(decoder(&tracker)));
    let mut pending = Vec::new();
    for chunk in parts(bytes)?.into_iter().flat_map(|p| p.chunks(CHUNK)) {
        feed(&mut stage, &mut pending, chunk, lim)?;
        match stage.take().expect("a decoder stage") {
            Stage::Uninit(u) => match u.try_init().map_err(|e| map_err("header", lim, &*e))? {
                InitializeResult::NeedMoreData(u) => stage = Some(Stage::Uninit(u)),
                InitializeResult::Initialized(image) => {
                    // The cap, once the header tells the size.
                    let h = &image.image_header().size;
                    let pixels = u64::from(h.width) * u64::from(h.height);
                    let base = lim.max_decode_alloc();
                    let more = alloc_cap(lim, pixels, bytes.len()) - base;
                    tracker
                        .expand_limit(usize::try_from(more.min(1 << 50)).unwrap_or(usize::MAX / 2));
                    stage = Some(Stage::Init(Box::new(image)));
                }
            },
            Stage::Init(image) => stage = Some(Stage::Init(image)),
        }
        if let Some(Stage::Init(image)) = &stage {
            if image.num_loaded_keyframes() > 0 {
                break;
            }
        }
    }
    match stage.expect("a decoder stage") {
        Stage::Uninit(_) => Err(failed("header", "the data ends inside the image header")),
        Stage::Init(mut image) => {
            image
                .finalize()
                .map_err(|e| map_err("container", lim, &*e))?;
            Ok(*image)
        }
    }
}

/// The image's header facts, from a decoder whose header is read.
fn describe(image: &JxlImage) -> Header {
    let h = image.image_header();
    let m = &h.metadata;
    let format = image.pixel_format();
    let alpha = m.alpha().map(|i| &m.ec_info[i]);
    let (bits, float) = match m.bit_depth {
        jxl_oxide::image::BitDepth::IntegerSample { bits_per_sample } => (bits_per_sample, false),
        jxl_oxide::image::BitDepth::FloatSample {
            bits_per_sample, ..
        } => (bits_per_sample, true),
    };
    Header {
        width: image.width(),
        height: image.height(),
        orientation: u8::try_from(m.orientation).unwrap_or(1),
        bits,
        float,
        has_alpha: alpha.is_some(),
        premultiplied: alpha.and_then(|a| a.alpha_associated()) == Some(true),
        grey: format.is_grayscale(),
        cmyk: format.has_black()
            || m.ec_info
                .iter()
                .any(|ec| matches!(ec.ty, jxl_oxide::ExtraChannelType::Black)),
        frames: if m.animation.is_some() { None } else { Some(1) },
        colour: Colour {
            // The profile the rendered pixels are in: a non-XYB image's
            // samples are in its embedded profile, byte for byte; else the
            // CICP code points' profile, made as for HEIF; else jxl-oxide's
            // synthesised one. (Its synthesised Display P3 profile put
            // converted colours 13 levels off on average from lcms2's.)
            icc: match (m.xyb_encoded, image.original_icc()) {
                (false, Some(embedded)) => embedded.to_vec(),
                _ => image
                    .rendered_cicp()
                    .and_then(|c| crate::color::icc_from_cicp(c[0], c[1]))
                    .unwrap_or_else(|| image.rendered_icc()),
            },
            cicp: image.rendered_cicp(),
            embedded_icc: image.original_icc().is_some(),
            xyb: m.xyb_encoded,
            hdr: image.hdr_type().is_some(),
        },
    }
}

/// The header, read from the first bytes of the file ([`open_header`]): no
/// pixel is decoded.
pub(crate) fn header(bytes: &[u8], lim: &Limits) -> Result<Header, JobError> {
    let image = open_header(bytes, lim)?;
    Ok(describe(&image))
}

/// The container's uncompressed `Exif` box as a TIFF structure, its
/// orientation tag reset to 1 (the pixels are decoded upright already).
/// `None` for a bare codestream, a file without one, or a Brotli-compressed
/// (`brob`) one, which is not inflated (see the module's doc).
pub(crate) fn exif(bytes: &[u8]) -> Option<Vec<u8>> {
    if !bytes.starts_with(&CONTAINER_SIG) {
        return None;
    }
    let payload = boxes(bytes)
        .ok()?
        .into_iter()
        .find(|b| &b.kind == b"Exif")?
        .payload;
    // A 4-byte big-endian offset from its end to the TIFF header.
    let offset = u32::from_be_bytes(payload.get(..4)?.try_into().ok()?) as usize;
    let mut tiff = payload.get(4usize.checked_add(offset)?..)?.to_vec();
    if tiff.is_empty() {
        return None;
    }
    let _ = image::metadata::Orientation::remove_from_exif_chunk(&mut tiff);
    Some(tiff)
}

/// Decode the first frame, upright, into straight-alpha RGBA8, with the ICC
/// profile that describes the pixels.
pub(crate) fn decode(bytes: &[u8], lim: &Limits) -> Result<(RgbaImage, Option<Vec<u8>>), JobError> {
    let image = open(bytes, lim)?;
    let header = describe(&image);
    if header.cmyk {
        return Err(JobError::unsupported_format(
            "CMYK JPEG XL (a black channel) is not supported",
        ));
    }
    if image.num_loaded_keyframes() == 0 {
        return Err(failed("pixels", "the data ends before the first frame"));
    }
    let render = image
        .render_frame(0)
        .map_err(|e| map_err("pixels", lim, &*e))?;
    let mut stream = render.stream();
    let (w, h) = (stream.width(), stream.height());
    if (w, h) != (header.width, header.height) {
        return Err(failed(
            "pixels",
            format!(
                "rendered {w}x{h}, the header says {}x{}",
                header.width, header.height
            ),
        ));
    }
    let colour = if header.grey { 1 } else { 3 };
    let channels = stream.channels() as usize;
    let alpha = match channels.checked_sub(colour) {
        Some(0) => false,
        Some(1) => true,
        _ => {
            return Err(JobError::unsupported_format(format!(
                "JPEG XL rendered with {channels} channels"
            )))
        }
    };
    let premultiplied = alpha && header.premultiplied;
    let mut row = vec![0f32; w as usize * channels];
    let mut out = Vec::with_capacity(w as usize * h as usize * 4);
    for _ in 0..h {
        if stream.write_to_buffer(&mut row) != row.len() {
            return Err(failed(
                "pixels",
                "the rendered frame is smaller than its size",
            ));
        }
        push_rgba8(&row, colour, alpha, premultiplied, &mut out);
    }
    let img = RgbaImage::from_raw(w, h, out).ok_or_else(|| failed("pixels", "wrong size"))?;
    Ok((img, Some(header.colour.icc)))
}

/// Rendered samples (`colour` channels, then alpha where `alpha`, each
/// nominally 0..=1) appended to `out` as straight-alpha RGBA8: grey widened
/// to RGB, premultiplied colour divided by its alpha (0 where the alpha
/// is), every sample rounded to nearest.
fn push_rgba8(row: &[f32], colour: usize, alpha: bool, premultiplied: bool, out: &mut Vec<u8>) {
    let channels = colour + usize::from(alpha);
    for px in row.chunks_exact(channels) {
        let a = if alpha {
            px[colour].clamp(0.0, 1.0)
        } else {
            1.0
        };
        let straight = |v: f32| {
            if !premultiplied {
                v
            } else if a > 0.0 {
                v / a
            } else {
                0.0
            }
        };
        let (r, g, b) = if colour == 1 {
            (px[0], px[0], px[0])
        } else {
            (px[0], px[1], px[2])
        };
        out.extend_from_slice(&[
            to_8bit(straight(r)),
            to_8bit(straight(g)),
            to_8bit(straight(b)),
            to_8bit(a),
        ]);
    }
}

/// A rendered sample (nominally 0..=1) to 8 bits, clamped and rounded to
/// nearest; NaN is 0.
fn to_8bit(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_round_to_nearest() {
        assert_eq!(to_8bit(0.0), 0);
        assert_eq!(to_8bit(1.0), 255);
        assert_eq!(to_8bit(-0.5), 0);
        assert_eq!(to_8bit(7.0), 255);
        assert_eq!(to_8bit(f32::NAN), 0);
        // 16-bit levels: 0.6 of an 8-bit level rounds up (truncation would
        // keep it down), 0.4 rounds down.
        assert_eq!(to_8bit(100.6 / 255.0), 101);
        assert_eq!(to_8bit(100.4 / 255.0), 100);
        for v in 0..=65535u32 {
            let exact = f64::from(v) * 255.0 / 65535.0;
            let got = to_8bit(v as f32 / 65535.0);
            assert!((f64::from(got) - exact).abs() <= 0.5, "{v}");
        }
    }

    use crate::error::ErrorCode;

    /// A 240x135 lossless sRGB codestream of 42 bytes (from jxl-oxide's
    /// documentation).
    const TINY: &[u8] = &[
        0xff, 0x0a, 0x30, 0x54, 0x10, 0x09, 0x08, 0x06, 0x01, 0x00, 0x78, 0x00, 0x4b, 0x38, 0x41,
        0x3c, 0xb6, 0x3a, 0x51, 0xfe, 0x00, 0x47, 0x1e, 0xa0, 0x85, 0xb8, 0x27, 0x1a, 0x48, 0x45,
        0x84, 0x1b, 0x71, 0x4f, 0xa8, 0x3e, 0x8e, 0x30, 0x03, 0x92, 0x84, 0x01,
    ];

    #[test]
    fn the_header_describes_the_image() {
        let h = header(TINY, &Limits::default()).unwrap();
        assert_eq!((h.width, h.height), (240, 135));
        assert_eq!((h.orientation, h.bits, h.float), (1, 8, false));
        assert!(!h.has_alpha && !h.premultiplied && !h.grey && !h.cmyk);
        assert_eq!(h.frames, Some(1));
        // sRGB: BT.709 primaries, the sRGB transfer, RGB, full range.
        assert_eq!(h.colour.cicp, Some([1, 13, 0, 1]));
        assert!(!h.colour.embedded_icc && !h.colour.xyb && !h.colour.hdr);
        assert_eq!(&h.colour.icc[36..40], b"acsp", "an ICC profile");
        let (img, icc) = decode(TINY, &Limits::default()).unwrap();
        assert_eq!(img.dimensions(), (240, 135));
        assert_eq!(icc, Some(h.colour.icc));
        assert!(img.pixels().all(|p| p[3] == 255));
    }

    #[test]
    fn a_cut_codestream_fails_to_decode() {
        for len in [2, 4, 9, 20, 30, 41] {
            let cut = &TINY[..len];
            let code = match header(cut, &Limits::default()) {
                Err(e) => e.code,
                Ok(_) => decode(cut, &Limits::default()).unwrap_err().code,
            };
            assert_eq!(code, ErrorCode::DecodeFailed, "{len} bytes");
        }
    }

    #[test]
    fn a_refused_allocation_is_a_limit() {
        // jxl-oxide's own error for an allocation over its tracker's cap,
        // as `map_err` sees it.
        let e = JxlImage::builder()
            .alloc_tracker(AllocTracker::with_limit(1000))
            .read(TINY)
            .and_then(|image| image.render_frame(0).map(|_| ()))
            .unwrap_err();
        let e = map_err("pixels", &Limits::default(), &*e);
        assert_eq!(e.code, ErrorCode::LimitExceeded, "{}", e.message);
        // The cap: the common one for small images, in proportion to the
        // pixels for large ones.
        let lim = Limits::default();
        assert_eq!(alloc_cap(&lim, 1000, 10), lim.max_decode_alloc());
        let big = 50_000_000;
        assert!(alloc_cap(&lim, big, 10) >= big * BYTES_PER_PIXEL);
    }

    #[test]
    fn premultiplied_alpha_is_divided_out() {
        let mut out = Vec::new();
        // Straight: kept; premultiplied: divided by alpha (0 where alpha is).
        push_rgba8(&[0.2, 0.4, 0.1, 0.5], 3, true, false, &mut out);
        push_rgba8(&[0.2, 0.4, 0.1, 0.5], 3, true, true, &mut out);
        push_rgba8(&[0.2, 0.4, 0.1, 0.0], 3, true, true, &mut out);
        assert_eq!(
            out,
            [51, 102, 26, 128, 102, 204, 51, 128, 0, 0, 0, 0],
            "0.2 * 255 = 51, 0.1 * 255 = 25.5 rounds up"
        );
        // Grey, with and without alpha, widens to RGB.
        out.clear();
        push_rgba8(&[0.5, 1.0, 0.25, 0.5], 1, true, true, &mut out);
        push_rgba8(&[0.5], 1, false, false, &mut out);
        assert_eq!(
            out,
            [128, 128, 128, 255, 128, 128, 128, 128, 128, 128, 128, 255]
        );
    }

    #[test]
    fn signatures_are_sniffed() {
        assert!(sniff(&[0xFF, 0x0A, 0xFA]));
        assert!(sniff(&CONTAINER_SIG));
        assert!(!sniff(&[0xFF, 0xD8, 0xFF]));
        assert!(!sniff(b"\x89PNG\r\n\x1a\n"));
        assert!(!sniff(&CONTAINER_SIG[..8]));
        assert!(!sniff(&[]));
    }

    /// A box of `kind` holding `payload`.
    fn bmff(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut b = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(payload);
        b
    }

    #[test]
    fn only_codestream_boxes_reach_the_decoder() {
        let mut file = CONTAINER_SIG.to_vec();
        file.extend(bmff(b"ftyp", b"jxl \0\0\0\0jxl "));
        file.extend(bmff(b"brob", b"Exif\x1b\x00\x00"));
        file.extend(bmff(b"jxlc", &[0xFF, 0x0A, 1, 2, 3]));
        file.extend(bmff(b"xml ", b"<x/>"));
        let kept: Vec<&[u8]> = parts(&file).unwrap();
        let kinds: Vec<&[u8]> = kept.iter().map(|p| &p[4..8]).collect();
        assert_eq!(kinds, [&b"JXL "[..], b"ftyp", b"jxlc"]);
        // A bare codestream goes whole.
        assert_eq!(parts(&[0xFF, 0x0A, 9]).unwrap(), [&[0xFF, 0x0A, 9][..]]);
        // A box longer than the file is a truncated file.
        let mut cut = file.clone();
        cut.truncate(cut.len() - 2);
        assert!(parts(&cut).is_err());
        // A box smaller than its own header is corrupt.
        let mut bad = CONTAINER_SIG.to_vec();
        bad.extend_from_slice(&[0, 0, 0, 4, b'f', b't', b'y', b'p']);
        assert!(parts(&bad).is_err());
    }

    #[test]
    fn an_uncompressed_exif_box_is_read_without_its_orientation() {
        // TIFF, little endian, IFD0 with an orientation of 6.
        let mut tiff = b"II*\0\x08\0\0\0\x01\0".to_vec();
        tiff.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0]);
        let mut payload = 0u32.to_be_bytes().to_vec();
        payload.extend_from_slice(&tiff);
        let mut file = CONTAINER_SIG.to_vec();
        file.extend(bmff(b"ftyp", b"jxl \0\0\0\0jxl "));
        file.extend(bmff(b"Exif", &payload));
        file.extend(bmff(b"jxlc", &[0xFF, 0x0A]));
        let got = exif(&file).expect("the Exif box");
        assert_eq!(got.len(), tiff.len());
        assert_eq!(
            image::metadata::Orientation::from_exif_chunk(&got),
            Some(image::metadata::Orientation::NoTransforms)
        );
        // Compressed, it is not inflated.
        let mut brob = CONTAINER_SIG.to_vec();
        brob.extend(bmff(b"brob", b"Exif\x00"));
        assert_eq!(exif(&brob), None);
        assert_eq!(exif(&[0xFF, 0x0A]), None);
    }
}
