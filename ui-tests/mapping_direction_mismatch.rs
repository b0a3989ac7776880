// Coherence as typestate: a mapping's direction is in its type; a buffer mapped for the device
// to write (FromDevice, not cleaned for reading) is refused where one to read is required.
use umrf::coherence::{DeviceMapping, FromDevice, ToDevice};
use umrf::residency::CpuLocal;

fn transmit(_packet: &DeviceMapping<u8, CpuLocal, ToDevice>) {}

fn send(rx_buffer: DeviceMapping<u8, CpuLocal, FromDevice>) {
    transmit(&rx_buffer);
}

fn main() {}
