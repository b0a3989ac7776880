//! What the machine has: NUMA nodes, their CPUs and memory, distances, huge-page pools.
