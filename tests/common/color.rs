//! Colour test helpers: real photographs, ICC profiles, and lcms2's
//! `tificc` as the reference conversion.

use std::path::Path;

use image::RgbaImage;

/// A real photograph (scripts/fetch-photos.sh), 480 pixels wide.
pub fn photo(name: &str) -> RgbaImage {
    let path = format!("{}/photos/{name}.jpg", env!("CARGO_MANIFEST_DIR"));
    let photo = image::open(&path)
        .unwrap_or_else(|e| {
            panic!("{path}: {e}: run scripts/fetch-photos.sh (scripts/test.sh does)")
        })
        .into_rgba8();
    image::imageops::resize(
        &photo,
        480,
        480 * photo.height() / photo.width(),
        image::imageops::FilterType::Triangle,
    )
}

/// moxcms' Display P3 profile, padded to a multiple of four bytes as the
/// ICC specification asks and libpng checks.
pub fn display_p3_icc() -> Vec<u8> {
    let mut icc = moxcms::ColorProfile::new_display_p3().encode().unwrap();
    icc.resize(icc.len().next_multiple_of(4), 0);
    let len = u32::try_from(icc.len()).unwrap();
    icc[..4].copy_from_slice(&len.to_be_bytes());
    icc
}

/// colord's Adobe RGB (1998) profile (Debian's colord-data).
pub fn adobe_rgb_icc() -> Vec<u8> {
    let path = "/usr/share/color/icc/colord/AdobeRGB1998.icc";
    std::fs::read(path).unwrap_or_else(|e| {
        panic!(
            "{path}: {e}: install colord-data (scripts/test.sh does: apt-get install colord-data)"
        )
    })
}

/// An 8-bit RGB PNG of `img` (alpha dropped) carrying `icc`.
pub fn png_with_icc(img: &RgbaImage, icc: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut info = png::Info::with_size(img.width(), img.height());
    info.icc_profile = icc.map(|p| std::borrow::Cow::Owned(p.to_vec()));
    let mut enc = png::Encoder::with_info(&mut out, info).unwrap();
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().unwrap();
    let rgb: Vec<u8> = img
        .as_raw()
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    w.write_image_data(&rgb).unwrap();
    w.finish().unwrap();
    out
}

/// Run a tool, failing with how to install it when it is missing.
pub fn tool(program: &str, args: &[&str], package: &str) {
    super::tool_in(None, program, args, package);
}

/// `pixels` read with the profile `from` and converted to sRGB by lcms2's
/// `tificc` (perceptual intent), the reference for imgworker's conversion.
pub fn tificc_to_srgb(pixels: &RgbaImage, from: &[u8]) -> RgbaImage {
    let dir = tempfile::tempdir().unwrap();
    let (png, tif, icc, out) = (
        dir.path().join("in.png"),
        dir.path().join("in.tif"),
        dir.path().join("in.icc"),
        dir.path().join("out.tif"),
    );
    std::fs::write(&png, png_with_icc(pixels, None)).unwrap();
    std::fs::write(&icc, from).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    tool("vips", &["copy", &s(&png), &s(&tif)], "libvips-tools");
    let input = format!("-i{}", s(&icc));
    tool(
        "tificc",
        &[&input, "-o*sRGB", "-t0", &s(&tif), &s(&out)],
        "liblcms2-utils",
    );
    image::open(&out).unwrap().into_rgba8()
}
