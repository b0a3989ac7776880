// C++ under the preload library: new/delete through libstdc++ reach umrf's malloc and free.
// Standard containers on several threads; the output is the same with and without umrf.
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

static std::size_t work(int seed) {
  std::map<std::string, std::vector<int>> index;
  for (int i = 0; i < 20000; i++) {
    std::string key = "k" + std::to_string((i * 7919 + seed) % 5000);
    index[key].push_back(i);
  }
  std::vector<std::unique_ptr<std::string>> owned;
  for (auto &entry : index) owned.push_back(std::make_unique<std::string>(entry.first + "!"));
  std::size_t total = 0;
  for (auto &entry : index) total += entry.second.size();
  return total + owned.size();
}

int main() {
  std::vector<std::thread> threads;
  std::vector<std::size_t> results(4);
  for (int t = 0; t < 4; t++) threads.emplace_back([t, &results] { results[t] = work(t); });
  for (auto &t : threads) t.join();
  for (std::size_t r : results) std::printf("%zu\n", r);
  return 0;
}
