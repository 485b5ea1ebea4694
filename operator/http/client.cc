#include "operator/http/client.h"

#include <strings.h>

#include <cctype>

namespace paddock::http {

const char* methodName(Method m) {
  switch (m) {
    case Method::Get: return "GET";
    case Method::Post: return "POST";
    case Method::Put: return "PUT";
    case Method::Patch: return "PATCH";
    case Method::Delete: return "DELETE";
  }
  return "GET";
}

std::string Response::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && strncasecmp(k.data(), name.data(), k.size()) == 0) return v;
  }
  return "";
}

std::string proxyFor(const std::string& url, const std::function<const char*(const char*)>& getenv) {
  auto first = [&](const char* lower, const char* upper) {
    for (const char* name : {lower, upper}) {
      const char* v = getenv(name);
      if (v && *v) return std::string(v);
    }
    return std::string();
  };
  const bool https = url.rfind("https://", 0) == 0;
  if (!https && url.rfind("http://", 0) != 0) return "";
  std::string proxy = https ? first("https_proxy", "HTTPS_PROXY") : first("http_proxy", "HTTP_PROXY");
  if (proxy.empty()) return "";
  // The URL's host: after the scheme, before the port, path or user information.
  std::string authority = url.substr(https ? 8 : 7);
  authority = authority.substr(0, authority.find_first_of("/?#"));
  if (auto at = authority.rfind('@'); at != std::string::npos) authority = authority.substr(at + 1);
  std::string host = authority[0] == '[' ? authority.substr(1, authority.find(']') - 1) : authority.substr(0, authority.find(':'));
  for (auto& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string list = first("no_proxy", "NO_PROXY");
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    std::string entry = list.substr(start, end - start);
    entry.erase(0, entry.find_first_not_of(" \t"));
    entry.erase(entry.find_last_not_of(" \t") + 1);
    while (!entry.empty() && entry[0] == '.') entry.erase(0, 1);
    for (auto& c : entry) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (entry == "*" || (!entry.empty() && (host == entry || host.ends_with("." + entry)))) return "";
    start = end + 1;
  }
  return proxy;
}

std::string urlEncode(const std::string& value) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}


}  // namespace paddock::http
