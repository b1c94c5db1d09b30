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
}

/// Every standard job, in the order they are reported.
pub const ALL: [StandardJob; 9] = [
    StandardJob::Thumbnail(1920),
    StandardJob::Thumbnail(256),
    StandardJob::ResizeHalf,
    StandardJob::Blur,
    StandardJob::Unsharp,
    StandardJob::Colour,
    StandardJob::Chain,
    StandardJob::ToWebp,
    StandardJob::ToPng,
];

/// JPEG quality of every JPEG output.
pub const JPEG_QUALITY: u8 = 85;
/// WebP quality of the WebP job.
pub const WEBP_QUALITY: u8 = 80;
/// Gaussian blur sigma of the blur job.
pub const BLUR_SIGMA: f64 = 5.0;
/// The colour job's brightness (added, in 0..1 of full scale).
pub const BRIGHTNESS: f64 = 0.05;
/// The colour job's contrast (a factor around mid-grey).
pub const CONTRAST: f64 = 1.1;
/// The colour job's saturation (a factor on chroma).
pub const SATURATION: f64 = 1.2;

/// The crop of the chain job: the middle 5/6 of the source.
pub fn chain_crop(width: u32, height: u32) -> (u32, u32, u32, u32) {
    let (w, h) = (width * 5 / 6, height * 5 / 6);
    ((width - w) / 2, (height - h) / 2, w, h)
}

/// The width the chain job resizes to (60 % of the rotated crop's width).
pub fn chain_width(width: u32, height: u32) -> u32 {
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
        }
    }

    /// Output format.
    pub fn format(self) -> Format {
        match self {
            Self::ToWebp => Format::Webp,
            Self::ToPng => Format::Png,
            _ => Format::Jpeg,
        }
    }

    /// Output quality, where the format has one.
    pub fn quality(self) -> Option<u8> {
        match self {
            Self::ToWebp => Some(WEBP_QUALITY),
            Self::ToPng => None,
            _ => Some(JPEG_QUALITY),
        }
    }

    /// The imgworker ops for a source of `width` x `height`.
    pub fn ops(self, width: u32, height: u32) -> Value {
        match self {
            Self::Thumbnail(w) => json!([{"op": "resize", "width": w}]),
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
            Self::ToWebp | Self::ToPng => json!([]),
        }
    }

    /// A complete imgworker job message reading `{image}/original.jpg`
    /// and writing version `out`.
    pub fn message(self, id: &str, image: &str, width: u32, height: u32) -> Value {
        let mut output = json!({"version": "out", "format": self.format()});
        if let Some(q) = self.quality() {
            output["quality"] = json!(q);
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
    fn every_message_is_a_valid_job() {
        let cfg = crate::config::WorkerConfig::new();
        for j in ALL {
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
