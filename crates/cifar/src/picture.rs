//! Ordinary picture files (PNG, JPEG) to and from the CIFAR-10 pixel layout,
//! so a trained network can be asked about any image and a data set image can
//! be looked at.
//!
//! Reading: the file is decoded by the `image` crate (built with its PNG and
//! JPEG decoders only), converted to 8-bit RGB (an alpha channel is dropped,
//! grey is replicated), then, unless it already is 32x32, centre-cropped to a
//! square (the longer side trimmed equally on both ends, so nothing is
//! stretched) and resized to 32x32 with a triangle (bilinear) filter whose
//! support widens with the reduction, so every source pixel contributes.
//! A 32x32 file is taken pixel for pixel: writing a CIFAR image with
//! [`write_png`] and reading it back gives the same bytes.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::{ImageFormat, RgbImage};

use crate::IMAGE_BYTES;

/// Side of a CIFAR-10 image in pixels.
pub const SIDE: u32 = 32;
/// The filter used when a picture must be resized to 32x32 (stated in the README).
pub const RESIZE_FILTER: FilterType = FilterType::Triangle;

/// Why a picture file cannot be used; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum PictureError {
    /// The file could not be read or written.
    #[error("cannot read or write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is empty.
    #[error("{path} is empty: expected a PNG or JPEG picture")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The bytes are not a PNG or JPEG picture.
    #[error("{path} is not a PNG or JPEG picture ({what}); convert it to PNG or JPEG first")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What the bytes look like instead.
        what: String,
    },
    /// The file claims to be PNG or JPEG but cannot be decoded.
    #[error("{path}: cannot decode the {format} picture: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The format its first bytes announce.
        format: &'static str,
        /// The decoder's message.
        message: String,
    },
}

/// Reads a PNG or JPEG file as one CIFAR-10 image: 3072 bytes, the red,
/// green and blue planes, each 32x32 row-major (see the module docs for the
/// crop and resize).
pub fn read_picture(path: &Path) -> Result<Vec<u8>, PictureError> {
    let bytes = std::fs::read(path).map_err(|source| PictureError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_picture(&bytes, path)
}

/// [`read_picture`] on bytes already in memory; `path` only names them in errors.
pub fn decode_picture(bytes: &[u8], path: &Path) -> Result<Vec<u8>, PictureError> {
    if bytes.is_empty() {
        return Err(PictureError::Empty {
            path: path.to_path_buf(),
        });
    }
    let format = match image::guess_format(bytes) {
        Ok(ImageFormat::Png) => ImageFormat::Png,
        Ok(ImageFormat::Jpeg) => ImageFormat::Jpeg,
        Ok(other) => {
            return Err(PictureError::Unsupported {
                path: path.to_path_buf(),
                what: format!("{other:?} picture"),
            })
        }
        Err(_) => {
            return Err(PictureError::Unsupported {
                path: path.to_path_buf(),
                what: "unknown bytes".to_string(),
            })
        }
    };
    let decoded =
        image::load_from_memory_with_format(bytes, format).map_err(|e| PictureError::Corrupt {
            path: path.to_path_buf(),
            format: if format == ImageFormat::Png {
                "PNG"
            } else {
                "JPEG"
            },
            message: e.to_string(),
        })?;
    Ok(to_planes(&to_cifar_size(decoded.to_rgb8())))
}

/// Centre-crops `rgb` to a square and resizes it to 32x32 (unchanged when it
/// already is 32x32).
fn to_cifar_size(rgb: RgbImage) -> RgbImage {
    if rgb.width() == SIDE && rgb.height() == SIDE {
        return rgb;
    }
    let side = rgb.width().min(rgb.height());
    let x = (rgb.width() - side) / 2;
    let y = (rgb.height() - side) / 2;
    let square = image::imageops::crop_imm(&rgb, x, y, side, side).to_image();
    image::imageops::resize(&square, SIDE, SIDE, RESIZE_FILTER)
}

/// Interleaved 32x32 RGB to CIFAR's planar layout.
fn to_planes(rgb: &RgbImage) -> Vec<u8> {
    let plane = (SIDE * SIDE) as usize;
    let mut out = vec![0u8; IMAGE_BYTES];
    for (i, pixel) in rgb.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = pixel[c];
        }
    }
    out
}

/// Writes one CIFAR-10 image (3072 bytes, planar) as a 32x32 RGB PNG,
/// atomically (a temp file beside `path`, then a rename).
///
/// **Panics** if `image` is not 3072 bytes long.
pub fn write_png(image: &[u8], path: &Path) -> Result<(), PictureError> {
    assert_eq!(image.len(), IMAGE_BYTES, "a CIFAR-10 image is 3072 bytes");
    let plane = (SIDE * SIDE) as usize;
    let rgb = RgbImage::from_fn(SIDE, SIDE, |x, y| {
        let i = (y * SIDE + x) as usize;
        image::Rgb([image[i], image[plane + i], image[2 * plane + i]])
    });
    let mut encoded = Vec::new();
    rgb.write_to(&mut std::io::Cursor::new(&mut encoded), ImageFormat::Png)
        .map_err(|e| PictureError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
    fileio::write_atomic(path, &encoded).map_err(|source| PictureError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient_image() -> Vec<u8> {
        (0..IMAGE_BYTES).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn png_round_trip_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.png");
        let image = gradient_image();
        write_png(&image, &path).unwrap();
        assert_eq!(read_picture(&path).unwrap(), image);
    }

    #[test]
    fn planes_follow_the_cifar_layout() {
        // A red pixel at (row 0, col 1) and a blue one at (row 31, col 31).
        let mut rgb = RgbImage::new(SIDE, SIDE);
        rgb.put_pixel(1, 0, image::Rgb([200, 0, 0]));
        rgb.put_pixel(31, 31, image::Rgb([0, 0, 90]));
        let planes = to_planes(&rgb);
        assert_eq!(planes[1], 200);
        assert_eq!(planes[1024 + 1], 0);
        assert_eq!(planes[2 * 1024 + 1023], 90);
        assert_eq!(planes.iter().filter(|&&b| b != 0).count(), 2);
    }

    #[test]
    fn larger_pictures_are_cropped_to_the_centre_and_resized() {
        // 96x64: a 32-pixel red band on each side, a uniform grey square in
        // the middle. The centre crop keeps only the grey square.
        let rgb = RgbImage::from_fn(96, 64, |x, _| {
            if (16..80).contains(&x) {
                image::Rgb([100, 110, 120])
            } else {
                image::Rgb([255, 0, 0])
            }
        });
        let mut bytes = Vec::new();
        rgb.write_to(&mut std::io::Cursor::new(&mut bytes), ImageFormat::Png)
            .unwrap();
        let planes = decode_picture(&bytes, Path::new("wide.png")).unwrap();
        assert!(planes[..1024].iter().all(|&b| b == 100));
        assert!(planes[1024..2048].iter().all(|&b| b == 110));
        assert!(planes[2048..].iter().all(|&b| b == 120));
    }

    #[test]
    fn jpeg_is_read_and_resized() {
        // A uniform 40x40 JPEG: lossy, so each channel within a few levels.
        let rgb = RgbImage::from_pixel(40, 40, image::Rgb([30, 160, 90]));
        let mut bytes = Vec::new();
        rgb.write_to(&mut std::io::Cursor::new(&mut bytes), ImageFormat::Jpeg)
            .unwrap();
        let planes = decode_picture(&bytes, Path::new("a.jpg")).unwrap();
        for (c, want) in [30i32, 160, 90].into_iter().enumerate() {
            let plane = &planes[c * 1024..(c + 1) * 1024];
            assert!(
                plane.iter().all(|&b| (b as i32 - want).abs() <= 3),
                "channel {c}"
            );
        }
    }

    #[test]
    fn bad_files_are_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.png");
        std::fs::write(&empty, b"").unwrap();
        let err = read_picture(&empty).unwrap_err().to_string();
        assert!(
            err.contains("empty.png") && err.contains("is empty"),
            "{err}"
        );

        let text = dir.path().join("notes.png");
        std::fs::write(&text, b"hello, this is text").unwrap();
        let err = read_picture(&text).unwrap_err().to_string();
        assert!(
            err.contains("notes.png") && err.contains("not a PNG or JPEG"),
            "{err}"
        );

        let gif = dir.path().join("anim.gif");
        std::fs::write(&gif, b"GIF89a\x01\x00\x01\x00\x00\x00\x00;").unwrap();
        let err = read_picture(&gif).unwrap_err().to_string();
        assert!(err.contains("anim.gif") && err.contains("Gif"), "{err}");

        let cut = dir.path().join("cut.png");
        let full = dir.path().join("full.png");
        write_png(&gradient_image(), &full).unwrap();
        let bytes = std::fs::read(&full).unwrap();
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let err = read_picture(&cut).unwrap_err().to_string();
        assert!(
            err.contains("cut.png") && err.contains("cannot decode the PNG"),
            "{err}"
        );

        let missing = dir.path().join("missing.png");
        let err = read_picture(&missing).unwrap_err().to_string();
        assert!(err.contains("missing.png"), "{err}");
    }
}
