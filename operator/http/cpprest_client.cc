// The cpprestsdk implementation of http::Client. Nothing outside this file includes cpprestsdk.
#include <map>
#include <mutex>

#include <cpprest/http_client.h>
#include <cpprest/rawptrstream.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "operator/http/client.h"

namespace paddock::http {
namespace {

namespace wh = web::http;

wh::method toCpprest(Method m) {
  switch (m) {
    case Method::Get: return wh::methods::GET;
    case Method::Post: return wh::methods::POST;
    case Method::Put: return wh::methods::PUT;
    case Method::Patch: return wh::methods::PATCH;
    case Method::Delete: return wh::methods::DEL;
  }
  return wh::methods::GET;
}

// Checks PEM material up front, so a bad kubeconfig is reported by name rather than as an
// opaque TLS failure on the first request.
Status checkPem(const std::string& pem, bool is_key, const char* what) {
  if (pem.empty()) return Ok{};
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  bool ok;
  if (is_key) {
    EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    ok = key != nullptr;
    EVP_PKEY_free(key);
  } else {
    X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    ok = cert != nullptr;
    X509_free(cert);
  }
  BIO_free(bio);
  if (!ok) return Error::local("InvalidConfig", std::string(what) + " is not valid PEM");
  return Ok{};
}

Error fromException(const std::exception& e, const CancelToken& cancel) {
  if (cancel.cancelled()) return Error::local("Cancelled", "request cancelled");
  if (auto* he = dynamic_cast<const wh::http_exception*>(&e)) {
    if (he->error_code() == std::errc::timed_out) return Error::local("Timeout", he->what());
  }
  // Failures before a complete request reached the server (no connection, a stale keep-alive
  // connection refusing the write): the server cannot have acted on it, so any verb may retry.
  std::string what = e.what();
  for (const char* before : {"Failed to connect", "Failed to write", "Error resolving", "Failed to resolve"}) {
    if (what.rfind(before, 0) == 0) return Error::local("NotSent", what);
  }
  return Error::local("Transport", what);
}

class CpprestClient final : public Client {
 public:
  CpprestClient(std::string base_url, TlsOptions tls) : base_url_(std::move(base_url)), tls_(std::move(tls)) {}

  Result<Response> send(const Request& request, const CancelToken& cancel) override {
    return exchange(request, nullptr, cancel);
  }

  Result<Response> stream(const Request& request, const LineHandler& on_line, const CancelToken& cancel) override {
    return exchange(request, &on_line, cancel);
  }

 private:
  // One cpprestsdk client per timeout, since cpprestsdk sets the timeout per client; each
  // keeps its own connection pool.
  wh::client::http_client& clientFor(std::chrono::milliseconds timeout) {
    std::lock_guard lock(mu_);
    auto it = clients_.find(timeout);
    if (it != clients_.end()) return *it->second;
    wh::client::http_client_config config;
    config.set_timeout(timeout);
    config.set_validate_certificates(!tls_.insecure_skip_verify);
    if (!tls_.proxy.empty()) config.set_proxy(web::web_proxy(utility::conversions::to_string_t(tls_.proxy)));
    TlsOptions tls = tls_;
    config.set_ssl_context_callback([tls](boost::asio::ssl::context& ctx) {
      // A configured CA replaces the system's trust store (cpprestsdk loads it first), so only
      // certificates from that CA are accepted, as kubectl does.
      if (!tls.ca_pem.empty()) {
        SSL_CTX_set_cert_store(ctx.native_handle(), X509_STORE_new());
        ctx.add_certificate_authority(boost::asio::buffer(tls.ca_pem));
      }
      if (!tls.cert_pem.empty()) {
        ctx.use_certificate_chain(boost::asio::buffer(tls.cert_pem));
        ctx.use_private_key(boost::asio::buffer(tls.key_pem), boost::asio::ssl::context::pem);
      }
    });
    auto client = std::make_unique<wh::client::http_client>(utility::conversions::to_string_t(base_url_), config);
    return *clients_.emplace(timeout, std::move(client)).first->second;
  }

  Result<Response> exchange(const Request& request, const LineHandler* on_line, const CancelToken& cancel) {
    pplx::cancellation_token_source cts;
    auto registration = cancel.onCancel([cts]() mutable { cts.cancel(); });
    try {
      wh::http_request req(toCpprest(request.method));
      req.set_request_uri(utility::conversions::to_string_t(request.target));
      std::string content_type = "application/json";
      for (const auto& [k, v] : request.headers) {
        if (strcasecmp(k.c_str(), "Content-Type") == 0) content_type = v;
        else req.headers().add(k, v);
      }
      if (!request.body.empty() || request.method == Method::Post || request.method == Method::Put ||
          request.method == Method::Patch) {
        req.set_body(request.body, content_type);
      }
      wh::http_response resp = clientFor(request.timeout).request(req, cts.get_token()).get();
      Response out;
      out.status = resp.status_code();
      for (const auto& [k, v] : resp.headers()) out.headers.emplace_back(k, v);
      if (on_line == nullptr || out.status < 200 || out.status >= 300) {
        auto bytes = resp.extract_vector().get();
        out.body.assign(bytes.begin(), bytes.end());
        return out;
      }
      // Whatever has arrived, in chunks, split into lines here: cpprestsdk's read_line goes a
      // byte at a time through a locked buffer, which cost more CPU than the rest of a watch.
      auto buffer = resp.body().streambuf();
      std::vector<unsigned char> chunk(64 * 1024);
      std::string pending;
      while (true) {
        // One byte, waiting for it (a larger read would wait until that many had arrived), then
        // whatever else is there already.
        size_t n = buffer.getn(chunk.data(), 1).get();
        if (n > 0) {
          if (size_t more = std::min(buffer.in_avail(), chunk.size() - 1); more > 0) {
            n += buffer.getn(chunk.data() + 1, more).get();
          }
        }
        if (n == 0) {  // the end of the body
          if (!pending.empty()) (*on_line)(pending);
          break;
        }
        pending.append(reinterpret_cast<const char*>(chunk.data()), n);
        size_t start = 0;
        for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
          std::string_view line(pending.data() + start, nl - start);
          if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
          if (!line.empty() && !(*on_line)(line)) {
            cts.cancel();  // stop cpprestsdk reading the rest of the body into memory
            return out;
          }
        }
        pending.erase(0, start);
        if (cancel.cancelled()) return Error::local("Cancelled", "request cancelled");
      }
      return out;
    } catch (const pplx::task_canceled&) {
      return Error::local("Cancelled", "request cancelled");
    } catch (const std::exception& e) {
      return fromException(e, cancel);
    }
  }

  std::string base_url_;
  TlsOptions tls_;
  std::mutex mu_;
  std::map<std::chrono::milliseconds, std::unique_ptr<wh::client::http_client>> clients_;
};

}  // namespace

Result<std::unique_ptr<Client>> makeClient(const std::string& base_url, const TlsOptions& tls) {
  if (base_url.rfind("http://", 0) != 0 && base_url.rfind("https://", 0) != 0) {
    return Error::local("InvalidConfig", "server URL \"" + base_url + "\" must start with https:// or http://");
  }
  for (auto [pem, is_key, what] : {std::tuple{&tls.ca_pem, false, "certificate-authority data"},
                                   std::tuple{&tls.cert_pem, false, "client-certificate data"},
                                   std::tuple{&tls.key_pem, true, "client-key data"}}) {
    if (auto s = checkPem(*pem, is_key, what); !s) return s.error();
  }
  if (!tls.proxy.empty() && tls.proxy.rfind("http://", 0) != 0) {
    return Error::local("InvalidConfig", "proxy \"" + tls.proxy + "\" must be an http:// URL");
  }
  if (tls.cert_pem.empty() != tls.key_pem.empty()) {
    return Error::local("InvalidConfig", "a client certificate needs its key, and a key its certificate");
  }
  try {
    return std::unique_ptr<Client>(std::make_unique<CpprestClient>(base_url, tls));
  } catch (const std::exception& e) {
    return Error::local("InvalidConfig", e.what());
  }
}

}  // namespace paddock::http
