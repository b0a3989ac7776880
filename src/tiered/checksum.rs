//! The per-page checksum: CRC-32C (Castagnoli), in hardware where the CPU has it.
//!
//! CRC-32C is the checksum of iSCSI (RFC 3720), ext4 metadata and btrfs; the `crc32c` crate
//! uses SSE 4.2 `crc32` on x86-64 and the CRC instructions on AArch64, tens of GB/s, so
//! checking every page read costs little beside the read itself.

/// The checksum of one page's bytes.
#[inline]
pub(crate) fn page_checksum(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector_and_sensitivity() {
        // RFC 3720 B.4: 32 bytes of zeros.
        assert_eq!(page_checksum(&[0u8; 32]), 0x8a91_36aa);
        let mut page = vec![7u8; 4096];
        let before = page_checksum(&page);
        page[4095] ^= 1;
        assert_ne!(page_checksum(&page), before);
    }
}
