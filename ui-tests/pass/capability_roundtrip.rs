// Happy path: a buffer leaves its thread as a capability in a derived message and comes back.
use umrf::residency::CpuLocal;
use umrf::{Capability, Message, Pool};

#[derive(Message)]
struct Work {
    id: u64,
    data: Capability<f32, CpuLocal>,
    reply: umrf::mailbox::Sender<Capability<f32, CpuLocal>>,
}

fn main() {
    let pool = Pool::<CpuLocal>::builder().block_size(256).blocks_per_slot(4).slots(2).build().unwrap();
    let (work_tx, work_rx) = umrf::mailbox::<Work>(2);
    let (reply_tx, reply_rx) = umrf::mailbox(2);
    let worker_pool = pool.clone();
    let worker = std::thread::spawn(move || {
        let lease = worker_pool.attach().unwrap();
        let work = work_rx.recv().unwrap();
        let mut data = work.data.accept(&lease).unwrap();
        data[0] += work.id as f32;
        work.reply.send(data.into_capability()).unwrap();
    });
    let lease = pool.attach().unwrap();
    let data = lease.alloc_from_slice(&[1.0f32; 8]).unwrap().into_capability();
    work_tx.send(Work { id: 41, data, reply: reply_tx }).unwrap();
    let back = reply_rx.recv().unwrap().accept(&lease).unwrap();
    assert_eq!(back[0], 42.0);
    worker.join().unwrap();
}
