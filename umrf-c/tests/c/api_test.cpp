// The C API from C++: the header compiles as C++, RAII over umrf_alloc/umrf_free, standard
// containers of blocks, threads. Run by tests/c_api.rs against the static library.
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "umrf.h"

namespace {

struct Free {
  void operator()(void *p) const {
    if (umrf_free(p) != UMRF_OK) std::printf("FAILED: umrf_free: %s\n", umrf_last_error());
  }
};
using Block = std::unique_ptr<char, Free>;

Block alloc(std::size_t size, int core) { return Block(static_cast<char *>(umrf_alloc(size, core))); }

int failures = 0;

void check(bool ok, const std::string &what) {
  std::printf("%s: %s\n", ok ? "ok" : "FAILED", what.c_str());
  if (!ok) failures++;
}

}  // namespace

int main() {
  umrf_config config{};
  config.cores = 2;
  check(umrf_init(&config) == UMRF_OK, "umrf_init with 2 cores, other fields default");

  std::vector<Block> blocks;
  for (int i = 0; i < 1000; i++) {
    Block b = alloc(1 + static_cast<std::size_t>(i) % 300, i % 2);
    if (!b) break;
    std::memset(b.get(), i & 0xff, 1);
    blocks.push_back(std::move(b));
  }
  check(blocks.size() == 1000, "1000 blocks over two cores, held by unique_ptr");
  bool intact = true;
  for (std::size_t i = 0; i < blocks.size(); i++)
    intact = intact && static_cast<unsigned char>(blocks[i].get()[0]) == (i & 0xff);
  check(intact, "every block kept its byte");
  blocks.clear();  // the deleters free them

  // Freed on other threads than the allocating one.
  std::vector<Block> moved;
  for (int i = 0; i < 100; i++) moved.push_back(alloc(200, 0));
  std::thread t([&moved] { moved.clear(); });
  t.join();
  check(moved.empty(), "100 blocks freed by another std::thread");

  umrf_owner_info info{};
  Block one = alloc(64, 1);
  check(umrf_owner_of(one.get(), &info) == UMRF_OK && info.holder_core == 1, "umrf_owner_of from C++");
  char *raw = one.release();
  check(umrf_reset_pool(1) == 1, "umrf_reset_pool(1) releases the block the unique_ptr let go of");
  check(umrf_free(raw) == UMRF_ERR_DOUBLE_FREE, "freeing it afterwards is a double free");
  check(umrf_alloc(10, 2) == nullptr && umrf_last_error_code() == UMRF_ERR_CORE_OUT_OF_RANGE,
        "core 2 of 2 is out of range");

  std::string json(static_cast<std::size_t>(umrf_stats_json(nullptr, 0)) + 1, '\0');
  umrf_stats_json(&json[0], json.size());
  check(json.find("\"cores\":2") != std::string::npos, "stats JSON names 2 cores");

  std::printf(failures ? "%d check(s) failed\n" : "all checks passed\n", failures);
  return failures ? 1 : 0;
}
