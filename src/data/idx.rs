//! The IDX format of MNIST-style datasets: a magic number, the dimensions, then raw bytes.
//!
//! Files may be gzipped (as distributed) or plain; gzip is recognised by its magic bytes, not
//! by the file name. Only unsigned-byte data (type code 0x08) is accepted: that is what every
//! MNIST-family dataset uses.

use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;

use super::DataError;

/// An IDX array: its dimensions (outermost first) and its bytes in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const UBYTE: u8 = 0x08;

/// Parses the bytes of an IDX file, gunzipping them first when needed; `path` names the
/// file in errors.
pub fn read(path: &Path, raw: &[u8]) -> Result<IdxArray, DataError> {
    parse(path, &unpack(path, raw)?)
}

/// The plain IDX bytes of a file's content: gunzipped when it is gzip, as is otherwise.
pub fn unpack(path: &Path, raw: &[u8]) -> Result<Vec<u8>, DataError> {
    if !raw.starts_with(&GZIP_MAGIC) {
        return Ok(raw.to_vec());
    }
    let mut plain = Vec::new();
    GzDecoder::new(raw).read_to_end(&mut plain).map_err(|e| DataError::NotIdx {
        path: path.to_path_buf(),
        reason: format!("gzip data is damaged or truncated ({e})"),
    })?;
    Ok(plain)
}

/// Parses plain (not gzipped) IDX bytes.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<IdxArray, DataError> {
    let dims = check(path, bytes)?;
    let header = 4 + 4 * dims.len();
    Ok(IdxArray { dims, data: bytes[header..].to_vec() })
}

/// Validates plain IDX bytes (header, type, exact length) and returns the dimensions.
pub fn check(path: &Path, bytes: &[u8]) -> Result<Vec<usize>, DataError> {
    let bad = |reason: String| DataError::NotIdx { path: path.to_path_buf(), reason };
    if bytes.len() < 4 {
        return Err(bad(format!("only {} bytes, too short for an IDX header", bytes.len())));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        return Err(bad(format!("magic number {magic:#010x} does not start with two zero bytes")));
    }
    if bytes[2] != UBYTE {
        return Err(bad(format!("data type {:#04x} is not unsigned bytes (0x08)", bytes[2])));
    }
    let rank = bytes[3] as usize;
    let header = 4 + 4 * rank;
    if rank == 0 || bytes.len() < header {
        return Err(bad(format!("header declares {rank} dimensions but the file ends early")));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let found = bytes.len() - header;
    match expected {
        Some(n) if n == found => Ok(dims),
        Some(n) if n > found => Err(bad(format!(
            "truncated: dimensions {dims:?} need {n} bytes of data, the file has {found}"
        ))),
        Some(n) => Err(bad(format!(
            "dimensions {dims:?} need {n} bytes of data, the file has {found} (trailing bytes)"
        ))),
        None => Err(bad(format!("dimensions {dims:?} overflow"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0, 0, UBYTE, dims.len() as u8];
        for d in dims {
            bytes.extend_from_slice(&d.to_be_bytes());
        }
        bytes.extend_from_slice(data);
        bytes
    }

    #[test]
    fn parses_dimensions_and_data() {
        let array = parse(Path::new("x"), &idx(&[2, 3], &[1, 2, 3, 4, 5, 6])).unwrap();
        assert_eq!(array.dims, vec![2, 3]);
        assert_eq!(array.data, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn rejects_truncated_data() {
        let err = parse(Path::new("f.idx"), &idx(&[2, 3], &[1, 2, 3])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("f.idx") && msg.contains("truncated"), "{msg}");
    }

    #[test]
    fn rejects_wrong_magic_and_type() {
        let mut bytes = idx(&[1], &[0]);
        bytes[0] = 0x50;
        assert!(parse(Path::new("f"), &bytes).unwrap_err().to_string().contains("magic"));
        let mut bytes = idx(&[1], &[0]);
        bytes[2] = 0x0d;
        assert!(parse(Path::new("f"), &bytes).unwrap_err().to_string().contains("unsigned"));
    }

    #[test]
    fn rejects_a_too_short_header() {
        assert!(parse(Path::new("f"), &[0, 0]).is_err());
        assert!(parse(Path::new("f"), &[0, 0, 8, 3, 0, 0]).is_err());
    }

    #[test]
    fn reads_gzip_and_reports_a_damaged_stream() {
        use flate2::{Compression, write::GzEncoder};
        use std::io::Write;
        let plain = idx(&[4], &[9, 8, 7, 6]);
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(&plain).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(read(Path::new("a.gz"), &gz).unwrap().data, vec![9, 8, 7, 6]);
        let err = read(Path::new("a.gz"), &gz[..gz.len() / 2]).unwrap_err();
        assert!(err.to_string().contains("gzip"), "{err}");
    }
}
