//! A real, tiny PNG for the simulated screenshots, encoded here so no binary file is needed.

/// The simulated screenshot: a valid 4×3 RGB PNG (the same bytes every time).
pub fn screenshot_png() -> Vec<u8> {
    const WIDTH: u32 = 4;
    const HEIGHT: u32 = 3;
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();

    let mut header = Vec::new();
    header.extend_from_slice(&WIDTH.to_be_bytes());
    header.extend_from_slice(&HEIGHT.to_be_bytes());
    // Bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace.
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    push_chunk(&mut png, b"IHDR", &header);

    // Each row starts with filter type 0; the pixels make a small blue-to-white gradient.
    let mut pixels = Vec::new();
    for row in 0..HEIGHT {
        pixels.push(0);
        for column in 0..WIDTH {
            let shade = (30 + 50 * column + 20 * row) as u8;
            pixels.extend_from_slice(&[shade, shade, 255]);
        }
    }
    push_chunk(&mut png, b"IDAT", &zlib_stored(&pixels));
    push_chunk(&mut png, b"IEND", &[]);
    png
}

fn push_chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
    png.extend_from_slice(&length.to_be_bytes());
    let start = png.len();
    png.extend_from_slice(kind);
    png.extend_from_slice(data);
    let crc = crc32(&png[start..]);
    png.extend_from_slice(&crc.to_be_bytes());
}

/// A zlib stream holding `data` in one stored (uncompressed) deflate block; `data` must
/// be shorter than 64 KiB, which a 4×3 image is.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let length = u16::try_from(data.len()).unwrap_or(u16::MAX);
    // CMF 0x78 (deflate, 32 KiB window) and FLG 0x01 make the header a multiple of 31.
    let mut stream = vec![0x78, 0x01, 0x01];
    stream.extend_from_slice(&length.to_le_bytes());
    stream.extend_from_slice(&(!length).to_le_bytes());
    stream.extend_from_slice(data);
    stream.extend_from_slice(&adler32(data).to_be_bytes());
    stream
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in bytes {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        // The check value every CRC-32 (IEEE) implementation gives for "123456789".
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn adler32_matches_the_rfc_example() {
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }

    #[test]
    fn the_screenshot_is_a_well_formed_png() {
        let png = screenshot_png();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let mut offset = 8;
        let mut kinds = Vec::new();
        while offset < png.len() {
            let length = u32::from_be_bytes(png[offset..offset + 4].try_into().unwrap()) as usize;
            let body = &png[offset + 4..offset + 8 + length];
            let crc = u32::from_be_bytes(
                png[offset + 8 + length..offset + 12 + length]
                    .try_into()
                    .unwrap(),
            );
            assert_eq!(crc32(body), crc, "bad CRC in chunk {kinds:?}");
            kinds.push(String::from_utf8_lossy(&body[..4]).into_owned());
            if &body[..4] == b"IDAT" {
                let zlib = &body[4..];
                assert_eq!(
                    &zlib[..3],
                    [0x78, 0x01, 0x01],
                    "zlib header, final stored block"
                );
                let stored = u16::from_le_bytes([zlib[3], zlib[4]]);
                assert_eq!(!stored, u16::from_le_bytes([zlib[5], zlib[6]]));
                // Three rows of a filter byte and four RGB pixels.
                assert_eq!(usize::from(stored), 3 * (1 + 4 * 3));
                let pixels = &zlib[7..7 + usize::from(stored)];
                let trailer = &zlib[7 + usize::from(stored)..];
                assert_eq!(trailer, adler32(pixels).to_be_bytes());
            }
            offset += 12 + length;
        }
        assert_eq!(kinds, ["IHDR", "IDAT", "IEND"]);
        assert_eq!(offset, png.len());
    }
}
