// The planner's cost table: TSV reading, writing and interpolation (ops/pit/cost_table.h).
#include "ops/pit/cost_table.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <mutex>
#include <sstream>

#include "core/error.h"

#ifndef PIT_TABLES_DIR
#define PIT_TABLES_DIR "ops/pit/tables"
#endif

namespace pit::sparse {
namespace {

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  for (const char ch : line) {
    if (ch == '\t') {
      out.push_back(cur);
      cur.clear();
    } else if (ch != '\r') {
      cur += ch;
    }
  }
  out.push_back(cur);
  return out;
}

MicroTile parse_tile(const std::string& s, const std::string& where) {
  if (s == "-") return {1, 1};
  const size_t x = s.find('x');
  PIT_CHECK(x != std::string::npos, where, ": micro-tile '", s, "' is not ROWSxCOLS (e.g. 32x1) or -");
  try {
    return {std::stoll(s.substr(0, x)), std::stoll(s.substr(x + 1))};
  } catch (const std::exception&) {
    PIT_THROW(where, ": micro-tile '", s, "' is not ROWSxCOLS (e.g. 32x1) or -");
  }
}

double log_work(int64_t m, int64_t k, int64_t n) {
  return std::log(static_cast<double>(std::max<int64_t>(m, 1)) * std::max<int64_t>(k, 1) * std::max<int64_t>(n, 1));
}

}  // namespace

std::optional<double> CostTable::estimate(const std::string& kernel, MicroTile tile, DType dtype, int64_t m,
                                          int64_t k, int64_t n, double density) const {
  return CostModel(*this).estimate(kernel, tile, dtype, m, k, n, density);
}

CostModel::CostModel(const CostTable& table) : gpu_(table.gpu) {
  for (const CostRow& r : table.rows) {
    auto g = std::find_if(groups_.begin(), groups_.end(), [&](const Group& x) {
      return x.dtype == r.dtype && x.tile == r.tile && x.kernel == r.kernel;
    });
    if (g == groups_.end()) g = groups_.insert(groups_.end(), Group{r.kernel, r.tile, r.dtype, {}});
    const bool detect = r.kernel.rfind("detect_", 0) == 0;
    auto c = std::find_if(g->classes.begin(), g->classes.end(),
                          [&](const Class& x) { return x.m == r.m && x.k == r.k && x.n == r.n; });
    if (c == g->classes.end())
      c = g->classes.insert(g->classes.end(), Class{r.m, r.k, r.n, log_work(r.m, r.k, detect ? 1 : r.n), {}});
    c->points.emplace_back(r.density, r.us);
  }
  for (Group& g : groups_)
    for (Class& c : g.classes)
      std::stable_sort(c.points.begin(), c.points.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
}

std::optional<double> CostModel::estimate(const std::string& kernel, MicroTile tile, DType dtype, int64_t m,
                                          int64_t k, int64_t n, double density) const {
  // The shape class is the measured shape of this kernel/tile/dtype nearest in log work (the
  // first one on a tie); within it, linear interpolation between the two measured densities
  // around `density`, clamped at the ends; then scaled by the ratio of work.
  const auto g = std::find_if(groups_.begin(), groups_.end(), [&](const Group& x) {
    return x.dtype == dtype && x.tile == tile && x.kernel == kernel;
  });
  if (g == groups_.end()) return std::nullopt;
  const bool detect = kernel.rfind("detect_", 0) == 0;
  const double want = log_work(m, k, detect ? 1 : n);
  const Class* best = &g->classes.front();
  for (const Class& c : g->classes)
    if (std::abs(c.log_work - want) < std::abs(best->log_work - want)) best = &c;
  const auto& pts = best->points;
  double us;
  if (density <= pts.front().first) {
    us = pts.front().second;
  } else if (density >= pts.back().first) {
    // The first of the points measured at the highest density.
    size_t i = pts.size() - 1;
    while (i > 0 && pts[i - 1].first == pts.back().first) --i;
    us = pts[i].second;
  } else {
    size_t i = 1;
    while (pts[i].first < density) ++i;  // pts[i - 1] < density <= pts[i]
    const auto& [d0, u0] = pts[i - 1];
    const auto& [d1, u1] = pts[i];
    us = u0 + (density - d0) / (d1 - d0) * (u1 - u0);
  }
  return us * std::exp(want - best->log_work);
}

CostTable read_cost_table(const std::string& path) {
  std::ifstream in(path);
  PIT_CHECK(in.good(), "read_cost_table: cannot open ", path);
  CostTable t;
  std::string line;
  int lineno = 0;
  bool header = false;
  while (std::getline(in, line)) {
    ++lineno;
    constexpr const char* kCapability = "# compute capability ";
    if (line.rfind(kCapability, 0) == 0) {
      t.capability = line.substr(std::string(kCapability).size());
      while (!t.capability.empty() && std::isspace(static_cast<unsigned char>(t.capability.back()))) t.capability.pop_back();
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    const std::string where = path + ":" + std::to_string(lineno);
    const std::vector<std::string> f = split_tabs(line);
    if (!header) {
      PIT_CHECK(f.size() == 9 && f[0] == "gpu" && f[8] == "us", where,
                ": expected the header 'gpu kernel tile dtype m k n density us' (tab-separated)");
      header = true;
      continue;
    }
    PIT_CHECK(f.size() == 9, where, ": expected 9 tab-separated fields, got ", f.size());
    CostRow r;
    r.gpu = f[0];
    r.kernel = f[1];
    static const std::set<std::string> kKernels = {"dense", "k_lists", "blocks", "rows",
                                                   "detect_k_lists", "detect_blocks", "detect_rows"};
    PIT_CHECK(kKernels.count(r.kernel) == 1, where, ": unknown kernel '", r.kernel,
              "'; expected dense, k_lists, blocks, rows or detect_<one of those three>");
    r.tile = parse_tile(f[2], where);
    try {
      r.dtype = parse_dtype(f[3]);
    } catch (const std::exception& e) {
      PIT_THROW(where, ": ", user_message(e));
    }
    try {
      r.m = std::stoll(f[4]);
      r.k = std::stoll(f[5]);
      r.n = std::stoll(f[6]);
      r.density = std::stod(f[7]);
      r.us = std::stod(f[8]);
    } catch (const std::exception&) {
      PIT_THROW(where, ": m, k, n, density and us must be numbers: '", line, "'");
    }
    PIT_CHECK(r.density >= 0.0 && r.density <= 1.0 && r.us >= 0.0, where, ": density must be in [0, 1] and us >= 0");
    if (t.gpu.empty()) t.gpu = r.gpu;
    t.rows.push_back(std::move(r));
  }
  PIT_CHECK(header, "read_cost_table: ", path, " has no header line");
  return t;
}

void write_cost_table(const std::string& path, const CostTable& table) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    PIT_CHECK(out.good(), "write_cost_table: cannot write ", tmp, " (is the directory writable?)");
    out << "# pit cost table v1 (written by pit-bench pit --tune; see ops/pit/cost_table.h)\n";
    if (!table.capability.empty()) out << "# compute capability " << table.capability << "\n";
    out << "gpu\tkernel\ttile\tdtype\tm\tk\tn\tdensity\tus\n";
    for (const CostRow& r : table.rows) {
      const std::string gpu = r.gpu.empty() ? table.gpu : r.gpu;
      out << gpu << '\t' << r.kernel << '\t' << (r.kernel == "dense" ? std::string("-") : r.tile.str()) << '\t'
          << dtype_name(r.dtype) << '\t' << r.m << '\t' << r.k << '\t' << r.n << '\t' << r.density << '\t' << r.us
          << '\n';
    }
    out.flush();
    PIT_CHECK(out.good(), "write_cost_table: writing ", tmp, " failed (disk full?)");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  PIT_CHECK(!ec, "write_cost_table: renaming ", tmp, " to ", path, " failed: ", ec.message());
}

std::string cost_table_file_name(const std::string& gpu) {
  std::string s;
  for (const char ch : gpu) {
    if (std::isalnum(static_cast<unsigned char>(ch))) s += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    else if (!s.empty() && s.back() != '_') s += '_';
  }
  while (!s.empty() && s.back() == '_') s.pop_back();
  return s + ".tsv";
}

std::string cost_table_dir() {
  const char* env = std::getenv("PIT_TABLE_DIR");
  return env && *env ? std::string(env) : std::string(PIT_TABLES_DIR);
}

namespace {

struct Loaded {
  CostTable table;
  CostModel model;
};

// Read once per path (the planner asks on every call; parsing the file each time cost more than
// a small GEMM). Tables live as long as the process; nullptr when there is no file.
const Loaded* load_cached_path(const std::string& path) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<const Loaded>> cache;
  std::lock_guard<std::mutex> lock(mu);
  const auto it = cache.find(path);
  if (it != cache.end()) return it->second.get();
  std::unique_ptr<const Loaded> loaded;
  if (std::ifstream(path).good()) {
    CostTable table = read_cost_table(path);
    CostModel model(table);
    loaded = std::make_unique<const Loaded>(Loaded{std::move(table), std::move(model)});
  }
  return (cache[path] = std::move(loaded)).get();
}

const Loaded* load_cached(const std::string& gpu) { return load_cached_path(cost_table_dir() + "/" + cost_table_file_name(gpu)); }

TableChoice choose_table(const std::string& gpu, const std::string& capability) {
  TableChoice c;
  const std::string own_name = cost_table_file_name(gpu);
  std::string skipped;  // tables that could not be read: named in the note, not fatal to planning
  try {
    if (const Loaded* own = load_cached(gpu)) {
      c.table = &own->table;
      c.model = &own->model;
      c.own = true;
      c.note = "planner: cost table " + own_name + " (measured on this GPU model)";
      return c;
    }
  } catch (const std::exception& e) {  // a merge conflict, a row of a newer pit: plan as without it
    skipped = "; skipped " + own_name + " (this GPU's own): " + e.what();
  }
  const std::string tune = "; `pit-bench pit --tune " + cost_table_dir() + "/" + cost_table_file_name(gpu) +
                           "` measures this GPU";
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(cost_table_dir(), ec))
    if (e.path().extension() == ".tsv") names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  if (!capability.empty()) {
    for (const std::string& name : names) {
      if (name == own_name) continue;  // tried above
      const Loaded* l = nullptr;
      try {
        l = load_cached_path(cost_table_dir() + "/" + name);  // each candidate read once, cached like the GPU's own
      } catch (const std::exception& e) {
        skipped += "; skipped " + name + ": " + e.what();
        continue;
      }
      if (l == nullptr || l->table.capability != capability) continue;
      c.table = &l->table;
      c.model = &l->model;
      c.note = "planner: no cost table for " + gpu + "; using " + name + " (" + l->table.gpu +
               ", the same compute capability " + capability + ")" + tune + skipped;
      return c;
    }
  }
  c.note = "planner: no cost table for " + gpu + " (compute capability " + (capability.empty() ? "unknown" : capability) +
           ") or a GPU of its architecture; the built-in model plans (conservative: dense unless the micro-tiles are "
           "sparse)" + tune + skipped;
  return c;
}

}  // namespace

const TableChoice& cost_table_for(const std::string& gpu, const std::string& capability) {
  // Decided once per (directory, GPU, capability): the planner asks on every call.
  static std::mutex mu;
  static std::map<std::string, TableChoice> known;
  const std::string key = cost_table_dir() + '\n' + gpu + '\n' + capability;
  std::lock_guard<std::mutex> lock(mu);
  const auto it = known.find(key);
  if (it != known.end()) return it->second;
  return known.emplace(key, choose_table(gpu, capability)).first->second;
}

}  // namespace pit::sparse
