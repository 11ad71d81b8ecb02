// Raw SQLite baseline for bench/memory.sh: one memory per transaction into a copy of keel's schema (made by
// `keel migrate`), with keel's pragmas (WAL, synchronous as given, foreign keys on) and prepared statements,
// for a fixed time. Each transaction is BEGIN; INSERT INTO memories; INSERT INTO memory_tags per tag; COMMIT,
// so the schema's FTS5 trigger fires as it does for keel. Content is 100 to 200 bytes of the benchmark's
// vocabulary (one word a line, most frequent first), Zipf-weighted like bench/lib/memory_insert.lua, with a
// tag or two and small metadata; ids are UUID-like text and times RFC 3339 text.
//
//   memory_raw DB VOCAB SECONDS [SYNCHRONOUS]    prints: rows=N seconds=S rate=R
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace {

sqlite3* db = nullptr;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "memory_raw: %s: %s\n", what.c_str(), db ? sqlite3_errmsg(db) : "");
  std::exit(1);
}

void exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "?";
    sqlite3_free(err);
    die(sql + ": " + msg);
  }
}

sqlite3_stmt* prepare(const char* sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) die(sql);
  return s;
}

void step_done(sqlite3_stmt* s, const char* what) {
  if (sqlite3_step(s) != SQLITE_DONE) die(what);
  sqlite3_reset(s);
}

void bind(sqlite3_stmt* s, int i, const std::string& v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

std::string rfc3339_now() {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

// Time-ordered like keel's UUIDv7: 48 bits of milliseconds, then random bits, in 8-4-4-4-12 hex.
std::string uuid_like(std::mt19937_64& rng) {
  const auto ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count());
  const uint64_t hi = (ms << 16) | 0x7000 | (rng() & 0x0fff);
  const uint64_t lo = (rng() & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  char buf[64];
  std::snprintf(
      buf, sizeof buf, "%08llx-%04llx-%04llx-%04llx-%012llx", static_cast<unsigned long long>(hi >> 32),
      static_cast<unsigned long long>((hi >> 16) & 0xffff), static_cast<unsigned long long>(hi & 0xffff),
      static_cast<unsigned long long>(lo >> 48), static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: memory_raw DB VOCAB SECONDS [SYNCHRONOUS]\n");
    return 2;
  }
  const std::string path = argv[1];
  const double seconds = std::atof(argv[3]);
  const std::string synchronous = argc > 4 ? argv[4] : "NORMAL";

  std::vector<std::string> vocab;
  {
    std::ifstream in(argv[2]);
    for (std::string w; std::getline(in, w);)
      if (!w.empty()) vocab.push_back(w);
  }
  if (vocab.empty()) die("empty vocabulary");
  std::vector<double> cdf(vocab.size());
  double total = 0;
  for (size_t r = 0; r < vocab.size(); ++r) cdf[r] = total += 1.0 / static_cast<double>(r + 1);

  std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<double> unit(0, total);
  auto pick = [&]() -> const std::string& {
    const auto it = std::lower_bound(cdf.begin(), cdf.end(), unit(rng));
    return vocab[std::min<size_t>(static_cast<size_t>(it - cdf.begin()), vocab.size() - 1)];
  };
  auto below = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  static const char* const kTags[] = {"work",   "home",   "idea",    "todo",    "travel",
                                      "health", "family", "reading", "project", "meeting"};
  static const char* const kSources[] = {"chat", "note", "email", "import"};

  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK)
    die("open " + path);
  exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=" + synchronous +
       "; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;");

  const std::string user_id = uuid_like(rng);
  {
    const std::string now = rfc3339_now();
    sqlite3_stmt* u = prepare(
        "INSERT INTO users (id, email, email_lower, password_hash, created_at, updated_at) VALUES (?1, ?2, "
        "?2, "
        "'$argon2id$v=19$m=19456,t=2,p=1$bench$bench', ?3, ?3)");
    bind(u, 1, user_id);
    bind(u, 2, "raw-" + user_id + "@example.com");
    bind(u, 3, now);
    step_done(u, "insert user");
    sqlite3_finalize(u);
  }

  sqlite3_stmt* begin = prepare("BEGIN");
  sqlite3_stmt* commit = prepare("COMMIT");
  sqlite3_stmt* mem = prepare(
      "INSERT INTO memories (id, user_id, namespace, content, metadata, tags, embedding, embedding_dims, "
      "vector_seq, version, created_at, updated_at, expires_at) VALUES (?1, ?2, 'default', ?3, ?4, ?5, NULL, "
      "NULL, 0, 1, ?6, ?6, NULL)");
  sqlite3_stmt* tag = prepare("INSERT INTO memory_tags (memory_id, user_id, tag) VALUES (?1, ?2, ?3)");

  const auto start = std::chrono::steady_clock::now();
  const auto until = start + std::chrono::duration<double>(seconds);
  long rows = 0;
  std::string content, metadata, tags_json;
  std::vector<std::string> tags;
  for (;;) {
    if ((rows & 15) == 0 && std::chrono::steady_clock::now() >= until) break;
    const int bytes = 100 + below(101);
    content.clear();
    while (static_cast<int>(content.size()) < bytes) {
      if (!content.empty()) content += ' ';
      content += pick();
    }
    tags.assign(1, kTags[below(10)]);
    if (below(2) == 0) {
      std::string t2 = kTags[below(10)];
      if (t2 != tags[0]) tags.push_back(t2);
    }
    tags_json = "[";
    for (size_t i = 0; i < tags.size(); ++i) tags_json += (i ? ",\"" : "\"") + tags[i] + "\"";
    tags_json += "]";
    metadata = std::string("{\"source\":\"") + kSources[below(4)] + "\",\"seq\":" + std::to_string(rows + 1) +
               ",\"thread\":0}";
    const std::string id = uuid_like(rng);
    const std::string now = rfc3339_now();

    step_done(begin, "BEGIN");
    bind(mem, 1, id);
    bind(mem, 2, user_id);
    bind(mem, 3, content);
    bind(mem, 4, metadata);
    bind(mem, 5, tags_json);
    bind(mem, 6, now);
    step_done(mem, "insert memory");
    for (const auto& t : tags) {
      bind(tag, 1, id);
      bind(tag, 2, user_id);
      bind(tag, 3, t);
      step_done(tag, "insert tag");
    }
    step_done(commit, "COMMIT");
    ++rows;
  }
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (sqlite3_stmt* s : {begin, commit, mem, tag}) sqlite3_finalize(s);
  sqlite3_close(db);
  std::printf("rows=%ld seconds=%.3f rate=%.1f\n", rows, took, static_cast<double>(rows) / took);
  return 0;
}
