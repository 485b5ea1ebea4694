#include "operator/audit/file_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "operator/audit/segment.h"

namespace paddock::audit {
namespace {

namespace fs = std::filesystem;

Error ioError(const std::string& what) { return Error::local("IO", what + ": " + std::strerror(errno)); }

// The segments of `dir`, by first seq.
Result<std::vector<std::pair<uint64_t, std::string>>> listSegments(const std::string& dir) {
  std::error_code ec;
  std::vector<std::pair<uint64_t, std::string>> out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (auto seq = parseSegmentName(name)) out.emplace_back(*seq, name);
  }
  if (ec) return Error::local("IO", "listing " + dir + ": " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ioError("reading " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Status writeAll(int fd, std::string_view data, int64_t offset, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd, data.data(), data.size(), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ioError("writing " + path);
    data.remove_prefix(static_cast<size_t>(n));
    offset += n;
  }
  return Ok{};
}

Status syncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ioError("opening " + dir);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return ioError("fsync " + dir);
  return Ok{};
}

}  // namespace

FileStore::~FileStore() {
  if (fd_ >= 0) ::close(fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Result<Opened> FileStore::open() {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return Error::local("IO", "creating " + dir_ + ": " + ec.message());
  std::string lock_path = dir_ + "/lock";
  lock_fd_ = ::open(lock_path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) return ioError("opening " + lock_path);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return Error::local("Conflict", "another writer holds " + lock_path);
  }
  auto segments = listSegments(dir_);
  if (!segments) return segments.error();
  if (segments->empty()) {
    if (auto s = startSegment(Head{}); !s) return s.error();
    return Opened{Head{}, std::nullopt};
  }

  auto [first_seq, name] = segments->back();
  std::string path = dir_ + "/" + name;
  auto contents = readFile(path);
  if (!contents) return contents.error();
  Tail tail = scanTail(*contents);
  if (!tail.head && tail.valid_bytes > 0) {
    return Error::local("DataLoss", path + " is damaged above its last line; run paddock-audit verify " + dir_);
  }
  fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd_ < 0) return ioError("opening " + path);
  Opened opened;
  if (tail.torn_bytes > 0) {
    if (::ftruncate(fd_, static_cast<off_t>(tail.valid_bytes)) != 0 || ::fdatasync(fd_) != 0) {
      return ioError("cutting the torn tail of " + path);
    }
    opened.repair = nlohmann::json{{"segment", name},
                                   {"offset", tail.valid_bytes},
                                   {"bytes", tail.torn_bytes},
                                   {"reason", tail.torn_reason}};
  }
  size_ = static_cast<int64_t>(tail.valid_bytes);
  if (tail.head) {
    head_ = *tail.head;
  } else {
    // The segment lost even its header: write it again from the previous segment's head.
    Head prev;
    if (segments->size() > 1) {
      auto before = readFile(dir_ + "/" + (*segments)[segments->size() - 2].second);
      if (!before) return before.error();
      Tail t = scanTail(*before);
      if (!t.head || t.torn_bytes > 0) {
        return Error::local("DataLoss", "the segment before " + name + " does not end in a whole record");
      }
      prev = *t.head;
    }
    if (prev.seq + 1 != first_seq) {
      return Error::local("DataLoss", name + " is empty and does not follow seq " + std::to_string(prev.seq));
    }
    std::string header = segmentHeaderLine(prev);
    if (auto s = writeAll(fd_, header, 0, path); !s) return s.error();
    if (::fdatasync(fd_) != 0) return ioError("fdatasync " + path);
    size_ = static_cast<int64_t>(header.size());
    head_ = prev;
  }
  opened.head = head_;
  return opened;
}

Status FileStore::startSegment(const Head& prev) {
  std::string path = dir_ + "/" + segmentName(prev.seq + 1);
  int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
  if (fd < 0) return ioError("creating " + path);
  std::string header = segmentHeaderLine(prev);
  Status s = writeAll(fd, header, 0, path);
  if (s && ::fdatasync(fd) != 0) s = ioError("fdatasync " + path);
  if (s) s = syncDir(dir_);
  if (!s) {
    ::close(fd);
    return s;
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  size_ = static_cast<int64_t>(header.size());
  head_ = prev;
  return Ok{};
}

Status FileStore::write(const std::vector<Record>& records) {
  if (fd_ < 0) return Error::local("IO", "the store is not open");
  if (records.empty()) return Ok{};
  if (size_ >= max_bytes_) {
    if (auto s = startSegment(head_); !s) return s;
  }
  std::string batch;
  for (const auto& r : records) batch += encodeLine(r);
  std::string path = dir_ + "/" + segmentName(head_.seq + 1);
  Status s = writeAll(fd_, batch, size_, path);
  if (s && ::fdatasync(fd_) != 0) s = ioError("fdatasync " + path);
  if (!s) {
    // Leave nothing unacknowledged behind, so the retry writes the same bytes at the same place.
    // Should this fail too, the retry overwrites the same range; a crash first leaves a tail that
    // the next open cuts as torn, or verify reports.
    (void)::ftruncate(fd_, static_cast<off_t>(size_));
    return s;
  }
  size_ += static_cast<int64_t>(batch.size());
  head_ = Head{records.back().seq, records.back().hash};
  return Ok{};
}

Status FileStore::read(const ItemSink& sink) { return readDirectory(dir_, sink); }

Status readDirectory(const std::string& dir, const ItemSink& sink) {
  if (!fs::is_directory(dir)) return Error::local("NotFound", dir + " is not a directory");
  auto segments = listSegments(dir);
  if (!segments) return segments.error();
  for (const auto& [first_seq, name] : *segments) {
    auto contents = readFile(dir + "/" + name);
    if (!contents) return contents.error();
    std::string_view rest = *contents;
    for (size_t line = 1; line == 1 || !rest.empty(); ++line) {
      std::string where = name + ":" + std::to_string(line);
      size_t nl = rest.find('\n');
      StoredItem item;
      item.where = where;
      if (nl == std::string_view::npos && !rest.empty()) {
        item.kind = StoredItem::Kind::Invalid;
        item.problem = "a torn last line (" + std::to_string(rest.size()) +
                       " bytes without a newline): the writer crashed; opening the store repairs it";
        rest = {};
      } else {
        item.json = nlohmann::json::parse(rest.substr(0, nl), nullptr, /*allow_exceptions=*/false);
        rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
        if (line == 1) {
          item.kind = StoredItem::Kind::SegmentHeader;
          item.named_first_seq = first_seq;
        } else if (item.json.is_discarded()) {
          item.kind = StoredItem::Kind::Invalid;
          item.problem = "the line is not JSON";
        }
      }
      if (!sink(item)) return Ok{};
    }
  }
  return Ok{};
}

}  // namespace paddock::audit
