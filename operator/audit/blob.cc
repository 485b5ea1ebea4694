#include "operator/audit/blob.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "operator/audit/record.h"

namespace paddock::audit {
namespace {

namespace fs = std::filesystem;

bool validHash(const std::string& h) {
  if (h.size() != 71 || !h.starts_with("sha256:")) return false;
  for (char c : h.substr(7)) {
    if (!std::isdigit(static_cast<unsigned char>(c)) && (c < 'a' || c > 'f')) return false;
  }
  return true;
}

std::string pathOf(const std::string& dir, const std::string& hash) {
  std::string hex = hash.substr(7);
  return dir + "/blobs/" + hex.substr(0, 2) + "/" + hex;
}

Error ioError(const std::string& what) { return Error::local("IO", what + ": " + std::strerror(errno)); }

Status syncPath(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return ioError("opening " + path);
  int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? Status(Ok{}) : Status(ioError("fsync " + path));
}

}  // namespace

std::string blobHash(std::string_view bytes) { return chainHash("", bytes); }

nlohmann::json blobRef(std::string_view bytes) {
  return {{"blob", blobHash(bytes)}, {"bytes", bytes.size()}};
}

std::optional<std::string> blobRefHash(const nlohmann::json& v) {
  if (!v.is_object() || v.size() != 2 || !v.contains("blob") || !v["blob"].is_string() || !v.contains("bytes")) {
    return std::nullopt;
  }
  return v["blob"].get<std::string>();
}

void collectBlobRefs(const nlohmann::json& details, std::vector<std::string>& out) {
  if (auto h = blobRefHash(details)) {
    out.push_back(*h);
    return;
  }
  if (details.is_object() || details.is_array()) {
    for (const auto& v : details) collectBlobRefs(v, out);
  }
}

Status putBlob(const std::string& dir, std::string_view bytes) {
  std::string hash = blobHash(bytes);
  std::string path = pathOf(dir, hash);
  std::error_code ec;
  if (fs::exists(path, ec)) return Ok{};
  std::string sub = fs::path(path).parent_path().string();
  bool made = fs::create_directories(sub, ec);
  if (ec) return Error::local("IO", "creating " + sub + ": " + ec.message());
  std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(reinterpret_cast<uintptr_t>(&bytes));
  int fd = ::open(tmp.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return ioError("creating " + tmp);
  std::string_view rest = bytes;
  while (!rest.empty()) {
    ssize_t n = ::write(fd, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return ioError("writing " + tmp);
    }
    rest.remove_prefix(static_cast<size_t>(n));
  }
  if (::fdatasync(fd) != 0) {
    ::close(fd);
    return ioError("fdatasync " + tmp);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ioError("renaming " + tmp);
  if (auto s = syncPath(sub, O_RDONLY | O_DIRECTORY); !s) return s;
  if (made) return syncPath(dir + "/blobs", O_RDONLY | O_DIRECTORY);
  return Ok{};
}

Result<std::string> readBlob(const std::string& dir, const std::string& hash) {
  if (!validHash(hash)) return Error::local("DataLoss", "\"" + hash + "\" is not a sha256: blob name");
  std::ifstream in(pathOf(dir, hash), std::ios::binary);
  if (!in) return Error::local("NotFound", "blob " + hash + " is missing from " + dir + "/blobs");
  std::ostringstream s;
  s << in.rdbuf();
  std::string bytes = s.str();
  if (blobHash(bytes) != hash) return Error::local("DataLoss", "blob " + hash + " does not hash to its name");
  return bytes;
}

}  // namespace paddock::audit
