#include "controllers/references.h"

#include <algorithm>
#include <vector>

#include "operator/common/glob.h"

namespace paddock::controllers {
namespace {

bool lowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool alnum(char c) { return lowerAlnum(c) || (c >= 'A' && c <= 'Z'); }
bool digit(char c) { return c >= '0' && c <= '9'; }

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == sep) {
      out.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

bool startsWith(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }
bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// One DNS label of `allowed` characters and '-', not starting or ending with '-'.
template <typename Allowed>
bool label(const std::string& l, Allowed allowed, size_t max = 63) {
  if (l.empty() || l.size() > max || l.front() == '-' || l.back() == '-') return false;
  return std::all_of(l.begin(), l.end(), [&](char c) { return allowed(c) || c == '-'; });
}

// A port from 1 to 65535 without leading zeros.
bool port(const std::string& p) {
  if (p.empty() || p.size() > 5 || p[0] == '0' || !std::all_of(p.begin(), p.end(), digit)) return false;
  return std::stoi(p) <= 65535;
}

// A repository host: lower-case labels, at least two, the last starting with a letter.
bool gitHost(const std::string& host) {
  auto labels = split(host, '.');
  if (host.size() > 253 || labels.size() < 2) return false;
  for (const auto& l : labels) {
    if (!label(l, lowerAlnum)) return false;
  }
  return !digit(labels.back()[0]);
}

// A repository path: segments of letters, digits, '.', '_' and '-', each starting with an
// optional '.' and then a letter, digit or '_' (so never '-x', '.' or '..').
bool gitPath(const std::string& path) {
  for (const auto& s : split(path, '/')) {
    size_t i = !s.empty() && s[0] == '.' ? 1 : 0;
    if (i >= s.size() || !(alnum(s[i]) || s[i] == '_')) return false;
    if (!std::all_of(s.begin() + i, s.end(), [](char c) { return alnum(c) || c == '_' || c == '.' || c == '-'; })) return false;
  }
  return true;
}

const char* kUrlGrammar =
    "must be https://HOST/PATH, ssh://git@HOST/PATH or git@HOST:PATH with a lower-case DNS host name, an optional "
    "port, and path segments of letters, digits, '.', '_' and '-' that do not start with '-' and are not '.' or "
    "'..', e.g. https://github.com/acme/payments";

RepositoryUrlCheck refused(std::string problem) { return {std::nullopt, std::move(problem)}; }

// HOST[:PORT] and PATH of a URL whose scheme has been recognised.
RepositoryUrlCheck hostAndPath(const std::string& host_port, const std::string& path) {
  std::string host = host_port.substr(0, host_port.find(':'));
  if (host.empty() || host[0] == '[' || std::all_of(host.begin(), host.end(), [](char c) { return digit(c) || c == '.'; })) {
    return refused("names its host by an IP address; Paddock clones only from a Git host named by its DNS name "
                   "(never loopback, private or cloud metadata addresses)");
  }
  if (host == "localhost" || endsWith(host, ".localhost") || host == "metadata" || host == "metadata.google.internal" ||
      host == "instance-data" || startsWith(host, "instance-data.")) {
    return refused("names a loopback or cloud metadata host; name the Git host the repository lives on");
  }
  bool port_ok = host_port.size() == host.size() || port(host_port.substr(host.size() + 1));
  if (!gitHost(host) || !port_ok || !gitPath(path)) return refused(kUrlGrammar);
  return {RepositoryUrl{host, path.substr(0, path.find('/'))}, ""};
}

}  // namespace

RepositoryUrlCheck parseRepositoryUrl(const std::string& text) {
  if (text.find_first_of("?#") != std::string::npos) {
    return refused("must not carry a query string or fragment (tokens travel there); remove everything from the first ? or #");
  }
  if (text.size() > 512) return refused("must be at most 512 characters");
  const char* credentials =
      "must not carry credentials or a user name (the only user allowed is ssh's git@): the workspace is cloned with "
      "the policy's read-only credential; remove the user part";
  for (const char* scheme : {"https://", "ssh://"}) {
    if (!startsWith(text, scheme)) continue;
    std::string rest = text.substr(std::string(scheme).size());
    size_t slash = rest.find('/');
    std::string authority = rest.substr(0, slash);
    if (authority.find('@') != std::string::npos) {
      bool git_user = std::string(scheme) == "ssh://" && startsWith(authority, "git@") &&
                      authority.find('@', 4) == std::string::npos;
      if (!git_user) return refused(credentials);
      authority = authority.substr(4);
    } else if (std::string(scheme) == "ssh://") {
      return refused(kUrlGrammar);
    }
    if (slash == std::string::npos) return refused(kUrlGrammar);
    return hostAndPath(authority, rest.substr(slash + 1));
  }
  if (startsWith(text, "git@")) {
    std::string rest = text.substr(4);
    size_t colon = rest.find(':');
    if (colon == std::string::npos) return refused(kUrlGrammar);
    return hostAndPath(rest.substr(0, colon), rest.substr(colon + 1));
  }
  if (text.find('@') != std::string::npos && text.find("://") == std::string::npos) return refused(credentials);
  return refused("must be an https:// or ssh Git URL without credentials, e.g. https://github.com/acme/payments or "
                 "git@github.com:acme/payments.git");
}

std::string branchNameProblem(const std::string& name) {
  if (startsWith(name, "refs/")) {
    return "must be the branch's short name, e.g. main, not a full ref such as refs/heads/main; drop the refs/heads/ "
           "prefix";
  }
  if (startsWith(name, "-")) return "must not start with '-' (git would read it as an option)";
  bool chars = !name.empty() && name.size() <= 255 && (alnum(name[0]) || name[0] == '_') &&
               std::all_of(name.begin(), name.end(), [](char c) { return alnum(c) || c == '-' || c == '.' || c == '_' || c == '/'; });
  bool ref = chars && name.find("..") == std::string::npos && name.find("//") == std::string::npos &&
             name.find("/.") == std::string::npos && name.find(".lock/") == std::string::npos && !endsWith(name, "/") &&
             !endsWith(name, ".") && !endsWith(name, ".lock") && name != "HEAD";
  if (ref) return "";
  return "is not a valid branch name by git check-ref-format (letters, digits, '-', '.', '_' and '/' only; no '..', "
         "'//', a component starting with '.', a component or name ending in '.lock', or a trailing '/' or '.'; not HEAD)";
}

namespace {

// A path component of an image name: [a-z0-9]+ joined by '.', '_', '__' or one or more '-'.
bool imageComponent(const std::string& c) {
  size_t i = 0;
  while (i < c.size()) {
    size_t run = i;
    while (i < c.size() && lowerAlnum(c[i])) ++i;
    if (i == run) return false;  // a separator at the start, or two in a row
    if (i == c.size()) return true;
    size_t sep = i;
    while (i < c.size() && !lowerAlnum(c[i])) ++i;
    std::string s = c.substr(sep, i - sep);
    bool dashes = std::all_of(s.begin(), s.end(), [](char ch) { return ch == '-'; });
    if (!(s == "." || s == "_" || s == "__" || dashes) || i == c.size()) return false;
  }
  return false;
}

// A registry: DNS labels (letters of either case), at least two, and an optional numeric port.
bool registry(const std::string& r) {
  std::string host = r.substr(0, r.find(':'));
  if (host.size() != r.size()) {
    std::string p = r.substr(host.size() + 1);
    if (p.empty() || p.size() > 5 || !std::all_of(p.begin(), p.end(), digit)) return false;
  }
  auto labels = split(host, '.');
  return labels.size() >= 2 && std::all_of(labels.begin(), labels.end(), [](const std::string& l) { return label(l, alnum, 1024); });
}

bool tagOf(const std::string& t, bool glob) {
  auto ok = [&](char c) { return alnum(c) || c == '_' || (glob && (c == '*' || c == '?')); };
  return !t.empty() && t.size() <= 128 && ok(t[0]) &&
         std::all_of(t.begin(), t.end(), [&](char c) { return ok(c) || c == '.' || c == '-'; });
}

bool digestOf(const std::string& d) {
  auto hex = [](const std::string& h, size_t n) {
    return h.size() == n && std::all_of(h.begin(), h.end(), [](char c) { return digit(c) || (c >= 'a' && c <= 'f'); });
  };
  return (startsWith(d, "sha256:") && hex(d.substr(7), 64)) || (startsWith(d, "sha512:") && hex(d.substr(7), 128));
}

// Splits REGISTRY/PATH[:TAG] into its parts (no checks beyond the shape).
bool splitName(const std::string& name, std::string& reg, std::string& path, std::string& tag) {
  size_t slash = name.find('/');
  if (slash == std::string::npos) return false;
  reg = name.substr(0, slash);
  path = name.substr(slash + 1);
  size_t colon = path.rfind(':');
  if (colon != std::string::npos && path.find('/', colon) == std::string::npos) {
    tag = path.substr(colon + 1);
    path = path.substr(0, colon);
    return true;
  }
  return true;
}

}  // namespace

std::optional<ImageReference> parseImageReference(const std::string& text) {
  if (text.empty() || text.size() > 512) return std::nullopt;
  ImageReference ref;
  std::string name = text;
  if (size_t at = text.find('@'); at != std::string::npos) {
    ref.digest = text.substr(at + 1);
    name = text.substr(0, at);
    if (!digestOf(ref.digest)) return std::nullopt;
  }
  bool has_tag_colon = false;
  if (!splitName(name, ref.registry, ref.repository, ref.tag)) return std::nullopt;
  has_tag_colon = name.size() != ref.registry.size() + 1 + ref.repository.size();
  if (!registry(ref.registry) || (has_tag_colon && !tagOf(ref.tag, false))) return std::nullopt;
  auto components = split(ref.repository, '/');
  if (!std::all_of(components.begin(), components.end(), imageComponent)) return std::nullopt;
  return ref;
}

std::optional<ImagePattern> parseImagePattern(const std::string& text) {
  ImagePattern p;
  if (text == "*" || text == "**") {
    p.any = true;
    return p;
  }
  if (text.find('@') != std::string::npos) {
    auto ref = parseImageReference(text);
    if (!ref || !ref->tag.empty()) return std::nullopt;
    return ImagePattern{false, ref->registry, ref->repository, "", ref->digest};
  }
  if (text.size() > 512 || !splitName(text, p.registry, p.repository, p.tag) || !registry(p.registry)) return std::nullopt;
  bool has_tag_colon = text.size() != p.registry.size() + 1 + p.repository.size();
  if (has_tag_colon && !tagOf(p.tag, true)) return std::nullopt;
  for (const auto& c : split(p.repository, '/')) {
    auto glob_char = [](char ch) { return lowerAlnum(ch) || ch == '*' || ch == '?'; };
    if (c.empty() || !glob_char(c[0]) ||
        !std::all_of(c.begin(), c.end(), [&](char ch) { return glob_char(ch) || ch == '.' || ch == '_' || ch == '-'; })) {
      return std::nullopt;
    }
  }
  return p;
}

bool imageMatches(const ImagePattern& pattern, const ImageReference& image) {
  if (pattern.any) return true;
  if (pattern.registry != image.registry || !globMatch(pattern.repository, image.repository)) return false;
  if (!pattern.digest.empty()) return pattern.digest == image.digest;
  return pattern.tag.empty() || (!image.tag.empty() && globMatch(pattern.tag, image.tag));
}

std::string protectedPathProblem(const std::string& pattern) {
  if (pattern.empty() || pattern.size() > 512) return "must be 1 to 512 characters";
  if (std::any_of(pattern.begin(), pattern.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
    return "must not contain NUL or other control characters; write the glob in plain characters";
  }
  if (pattern[0] == '/') return "is relative to the repository's root and must not start with '/', e.g. .github/workflows/**";
  for (const auto& s : split(pattern, '/')) {
    if (s == "." || s == "..") return "must not have '.' or '..' segments: a pattern names paths inside the repository, e.g. billing/**";
  }
  if (pattern.find("//") != std::string::npos || pattern.find('\\') != std::string::npos) {
    return "must not have empty segments ('//') or backslashes; separate folders with a single '/'";
  }
  return "";
}

std::string taskTextProblem(const std::string& text) {
  for (size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    auto next = [&](size_t k) { return i + k < text.size() ? static_cast<unsigned char>(text[i + k]) : 0; };
    bool c0 = (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f;
    bool c1 = c == 0xc2 && next(1) >= 0x80 && next(1) <= 0x9f;  // U+0080..U+009F
    if (c0 || c1) {
      return "must not contain control characters other than newline and tab (NUL, carriage return, escape, ...): "
             "the agent reads the task as its prompt; remove them";
    }
    bool embedding = c == 0xe2 && next(1) == 0x80 && next(2) >= 0xaa && next(2) <= 0xae;  // U+202A..U+202E
    bool isolate = c == 0xe2 && next(1) == 0x81 && next(2) >= 0xa6 && next(2) <= 0xa9;    // U+2066..U+2069
    if (embedding || isolate) {
      return "must not contain bidirectional override or isolate characters (U+202A to U+202E, U+2066 to U+2069): "
             "they make the text a reviewer sees differ from what the agent reads; remove them";
    }
  }
  return "";
}

}  // namespace paddock::controllers
