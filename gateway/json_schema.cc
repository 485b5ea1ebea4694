#include "gateway/json_schema.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string_view>

namespace paddock::gateway {
namespace {

using nlohmann::json;
using std::to_string;
static_assert(sizeof(wchar_t) == 4, "patterns match over code points held in wchar_t");

constexpr int kMaxRefs = 64;             // $ref hops in one chain
constexpr int kMaxDepth = 512;           // nested subschemas ($ref hops included), and the arguments' nesting
constexpr size_t kMaxSteps = 1'000'000;  // subschema evaluations (and pattern work) per check: about a second
constexpr size_t kMaxFound = 10'000;     // violations collected before sorting
constexpr size_t kMaxPatternLength = 1000;
constexpr uint64_t kMaxPatternWeight = 10'000;
constexpr size_t kMaxLookaheadInput = 1000;  // a lookahead costs the square of the text's length
constexpr uint64_t kSaturate = 1'000'000'000;

bool isDigit(char c) { return std::isdigit(static_cast<unsigned char>(c)); }
std::string clip(std::string s, size_t max) { return s.size() > max ? s.substr(0, max - 3) + "..." : s; }
std::string show(const json& v) { return clip(v.dump(-1, ' ', false, json::error_handler_t::replace), 80); }
std::string quote(std::string_view s) { return show(json(std::string(s))); }
std::string rootOr(const std::string& pointer) { return pointer.empty() ? "(root)" : pointer; }

std::string typeOf(const json& v) {
  if (v.is_number_integer()) return "integer";
  return v.is_number() ? "number" : v.type_name();  // null, boolean, string, array, object
}
std::string withArticle(const std::string& type) {
  if (type == "null") return type;
  return (type == "integer" || type == "object" || type == "array" ? "an " : "a ") + type;
}
bool hasType(const json& v, const std::string& type) {
  if (type == "integer" && v.is_number_float()) {
    const double d = v.get<double>();
    return std::isfinite(d) && std::floor(d) == d;
  }
  return type == "number" ? v.is_number() : typeOf(v) == type;
}
const std::set<std::string, std::less<>> kTypes = {"null", "boolean", "object", "array", "number", "integer", "string"};

const json& objectOr(const json* v) {
  static const json empty = json::object();
  return v && v->is_object() ? *v : empty;
}
bool isNames(const json& v) {
  return v.is_array() && std::all_of(v.begin(), v.end(), [](const json& n) { return n.is_string(); });
}
// A count keyword's value (a non-negative integer, 3.0 included), or nullopt.
std::optional<uint64_t> count(const json* b) {
  if (!b || !hasType(*b, "integer") || b->get<long double>() < 0) return std::nullopt;
  return b->get<long double>() >= 1e18L ? uint64_t(1e18) : b->get<uint64_t>();
}

// How deep `v` nests (a scalar is 1), counted to just past `cap` without recursion, so what
// compares or prints values recursively (nlohmann's ==, <, dump) is only given bounded depths.
size_t depthOf(const json& v, size_t cap) {
  std::vector<std::pair<const json*, size_t>> todo{{&v, 1}};
  size_t deepest = 0;
  while (!todo.empty() && deepest <= cap) {
    auto [at, depth] = todo.back();
    todo.pop_back();
    deepest = std::max(deepest, depth);
    if (at->is_structured())
      for (const json& child : *at) todo.emplace_back(&child, depth + 1);
  }
  return deepest;
}

size_t codePoints(std::string_view s) {
  return std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}
std::wstring widen(std::string_view s) {  // UTF-8 to code points; a malformed byte becomes U+FFFD
  std::wstring out;
  for (size_t i = 0; i < s.size();) {
    auto b = static_cast<unsigned char>(s[i]);
    int n = b < 0x80 ? 0 : (b >> 5) == 6 ? 1 : (b >> 4) == 14 ? 2 : (b >> 3) == 30 ? 3 : -1;
    uint32_t cp = n == 0 ? b : n == 1 ? b & 0x1F : n == 2 ? b & 0x0F : b & 0x07;
    bool ok = n >= 0 && i + n < s.size() + (n == 0);
    for (int k = 1; ok && k <= n; ++k) {
      auto c = static_cast<unsigned char>(s[i + k]);
      ok = (c & 0xC0) == 0x80;
      cp = (cp << 6) | (c & 0x3F);
    }
    out.push_back(ok ? static_cast<wchar_t>(cp) : L'\uFFFD');
    i += ok ? n + 1 : 1;
  }
  return out;
}

// An upper bound on the NFA states `p` compiles to: one per character, and each {m,n} repeats
// the atom or group before it n times (m+1 when open-ended).
uint64_t patternWeight(std::string_view p) {
  std::vector<uint64_t> open{0};  // the weight so far of each open group, the whole pattern first
  uint64_t last = 0;              // the weight of the atom or group a {m,n} would repeat
  auto add = [&](uint64_t w) { last = w, open.back() = std::min(open.back() + w, kSaturate); };
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '\\') {
      ++i, add(1);
    } else if (p[i] == '[') {
      while (++i < p.size() && p[i] != ']') i += p[i] == '\\';
      add(1);
    } else if (p[i] == '(') {
      open.push_back(0);
    } else if (p[i] == ')' && open.size() > 1) {
      uint64_t group = open.back() + 1;
      open.pop_back(), add(group);
    } else if (p[i] == '{') {
      size_t j = i + 1;
      auto number = [&]() -> std::optional<uint64_t> {
        uint64_t x = 0;
        size_t from = j;
        for (; j < p.size() && isDigit(p[j]); ++j) x = std::min(x * 10 + (p[j] - '0'), kSaturate);
        return j > from ? std::optional(x) : std::nullopt;
      };
      auto m = number(), n = m;
      if (m && j < p.size() && p[j] == ',') ++j, n = number().value_or(*m + 1);
      if (!m || j >= p.size() || p[j] != '}') {
        add(1);
        continue;
      }
      const uint64_t times = std::max<uint64_t>(*n, 1);
      open.back() = std::min(open.back() + last * (times - 1), kSaturate);
      last = std::min(last * times, kSaturate), i = j;
    } else {
      add(1);
    }
  }
  uint64_t total = 0;
  for (uint64_t w : open) total = std::min(total + w, kSaturate);
  return total;
}

struct Pattern {
  std::wregex anywhere;  // [\s\S]*(?:p)[\s\S]*, so one linear regex_match is a search
  uint64_t weight = 0;
  bool lookahead = false;
  std::string error;  // why it cannot be used, or ""
};
Pattern compile(const std::string& p) {
  Pattern out;
  out.weight = patternWeight(p);
  out.lookahead = p.find("(?=") != std::string::npos || p.find("(?!") != std::string::npos;
  if (p.size() > kMaxPatternLength) return out.error = "is longer than 1000 characters", out;
  if (out.weight > kMaxPatternWeight)
    return out.error = "repeats too much ({m,n} bounds) to match in bounded time", out;
  const auto flags = std::regex::ECMAScript | std::regex_constants::__polynomial;  // linear time, no back-references
  try {
    std::wregex alone(widen(p), flags);  // an unbalanced pattern must fail alone, not once wrapped
    out.anywhere = std::wregex(L"[\\s\\S]*(?:" + widen(p) + L")[\\s\\S]*", flags);
  } catch (const std::exception& e) {
    out.error = std::string("does not compile as an ECMAScript regular expression (") + e.what() + ")";
  }
  return out;
}

std::string escapeToken(std::string_view t) {
  std::string out;
  for (char c : t) out += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
  return out;
}

// The value the fragment "#/a/b" (percent-encoded, JSON Pointer-escaped) points at in `root`, or nullptr.
const json* resolve(const json& root, const json& ref) {
  const std::string r = ref.is_string() ? ref.get<std::string>() : "";
  if (r.empty() || r[0] != '#') return nullptr;
  std::string ptr;
  for (size_t i = 1; i < r.size(); ++i) {
    bool encoded = r[i] == '%' && i + 2 < r.size() && std::isxdigit(static_cast<unsigned char>(r[i + 1])) &&
                   std::isxdigit(static_cast<unsigned char>(r[i + 2]));
    ptr += encoded ? static_cast<char>(std::stoi(r.substr(i + 1, 2), nullptr, 16)) : r[i];
    i += encoded ? 2 : 0;
  }
  if (!ptr.empty() && ptr[0] != '/') return nullptr;  // an anchor ("#name")
  const json* at = &root;
  for (size_t i = 0; i < ptr.size();) {
    size_t end = std::min(ptr.find('/', i + 1), ptr.size());
    std::string token;
    for (size_t k = i + 1; k < end; ++k) {
      bool escaped = ptr[k] == '~' && k + 1 < end && (ptr[k + 1] == '0' || ptr[k + 1] == '1');
      token += escaped ? (ptr[++k] == '0' ? '~' : '/') : ptr[k];
    }
    i = end;
    if (at->is_object() && at->contains(token)) {
      at = &(*at)[token];
    } else if (at->is_array() && !token.empty() && token.size() < 10 && (token == "0" || token[0] != '0') &&
               std::all_of(token.begin(), token.end(), isDigit) && std::stoul(token) < at->size()) {
      at = &(*at)[std::stoul(token)];
    } else {
      return nullptr;
    }
  }
  return at;
}

// Where in the instance a check is, as a chain of frames on the stack.
struct Path {
  const Path* up = nullptr;
  std::string_view key;
  size_t index = 0;
  bool is_index = false;
};
struct Found {
  std::string path, message;
  std::vector<std::string> order;  // the path's tokens, indexes zero-padded, for document order
};
struct Out {
  size_t want;
  std::vector<Found> list;
  bool full() const { return list.size() >= want; }
};

// What each keyword's value must be, for unsupported(); keywords not listed are annotations.
enum class Kind { Schema, Schemas, SchemaMap, Items, Count, Number, NumberOrBool, Positive, Pattern, Bool, Types,
                  Names, Array, DependentRequired, Dependencies, Ref, Id, Unsupported };
const std::map<std::string, Kind, std::less<>> kKeywords = {
    {"additionalProperties", Kind::Schema}, {"propertyNames", Kind::Schema}, {"additionalItems", Kind::Schema},
    {"contains", Kind::Schema}, {"not", Kind::Schema}, {"if", Kind::Schema}, {"then", Kind::Schema},
    {"else", Kind::Schema}, {"allOf", Kind::Schemas}, {"anyOf", Kind::Schemas}, {"oneOf", Kind::Schemas},
    {"prefixItems", Kind::Schemas}, {"properties", Kind::SchemaMap}, {"patternProperties", Kind::SchemaMap},
    {"$defs", Kind::SchemaMap}, {"definitions", Kind::SchemaMap}, {"dependentSchemas", Kind::SchemaMap},
    {"items", Kind::Items}, {"minLength", Kind::Count}, {"maxLength", Kind::Count}, {"minItems", Kind::Count},
    {"maxItems", Kind::Count}, {"minProperties", Kind::Count}, {"maxProperties", Kind::Count},
    {"minContains", Kind::Count}, {"maxContains", Kind::Count}, {"minimum", Kind::Number},
    {"maximum", Kind::Number}, {"exclusiveMinimum", Kind::NumberOrBool}, {"exclusiveMaximum", Kind::NumberOrBool},
    {"multipleOf", Kind::Positive}, {"pattern", Kind::Pattern}, {"uniqueItems", Kind::Bool}, {"type", Kind::Types},
    {"required", Kind::Names}, {"enum", Kind::Array}, {"dependentRequired", Kind::DependentRequired},
    {"dependencies", Kind::Dependencies}, {"$ref", Kind::Ref}, {"$id", Kind::Id},
    {"unevaluatedProperties", Kind::Unsupported}, {"unevaluatedItems", Kind::Unsupported},
    {"$dynamicRef", Kind::Unsupported}, {"$recursiveRef", Kind::Unsupported}};

struct Checker {
  const json& root;
  std::map<std::string, Pattern, std::less<>> patterns;
  std::set<const json*> walked;  // $ref targets unsupported() has been through
  size_t steps = 0;
  std::string abort;  // set when the check cannot be completed: then the one violation reported

  const Pattern& pattern(const std::string& p) {
    auto it = patterns.find(p);
    return it != patterns.end() ? it->second : patterns.emplace(p, compile(p)).first->second;
  }

  std::string unsupported() {
    if (depthOf(root, 2 * kMaxDepth) > 2 * kMaxDepth)
      return "the schema nests deeper than " + to_string(2 * kMaxDepth) + " JSON levels";
    return unsupported(root, "", 0);
  }
  // What in the schema at `where` (a pointer into the schema) cannot be checked, or "".
  std::string unsupported(const json& s, const std::string& where, int depth) {
    const std::string at = rootOr(where);
    if (depth > kMaxDepth) return "the schema nests deeper than " + to_string(kMaxDepth) + " levels at " + at;
    if (s.is_boolean()) return "";
    if (!s.is_object()) return "the schema at " + at + " is " + withArticle(typeOf(s)) + ", not an object or boolean";
    for (const auto& [key, v] : s.items()) {
      auto kind = kKeywords.find(key);
      if (kind == kKeywords.end()) continue;
      const std::string here = where + "/" + escapeToken(key), what = quote(key) + " at " + at;
      auto sub = [&](const json& x, const std::string& w) { return unsupported(x, w, depth + 1); };
      std::string why;
      switch (kind->second) {
        case Kind::Schema: why = sub(v, here); break;
        case Kind::Items:
          if (!v.is_array()) {
            why = sub(v, here);
            break;
          }
          if (s.contains("prefixItems")) return what + " cannot be an array next to \"prefixItems\"";
          [[fallthrough]];
        case Kind::Schemas:
          if (!v.is_array() || (v.empty() && key != "prefixItems" && key != "items"))
            return what + " must be a non-empty array of schemas";
          for (size_t i = 0; i < v.size() && why.empty(); ++i) why = sub(v[i], here + "/" + to_string(i));
          break;
        case Kind::SchemaMap:
        case Kind::Dependencies:
          if (!v.is_object()) return what + " must be an object";
          for (const auto& [name, x] : v.items()) {
            if (key == "patternProperties" && !pattern(name).error.empty())
              return "the pattern " + quote(name) + " in " + what + " " + pattern(name).error;
            if (key != "dependencies" || !x.is_array()) why = sub(x, here + "/" + escapeToken(name));
            else if (!isNames(x)) why = what + " must list property names for " + quote(name);
            if (!why.empty()) return why;
          }
          break;
        case Kind::Count:
          if (!count(&v)) return what + " must be a non-negative integer";
          break;
        case Kind::Number:
        case Kind::NumberOrBool:
          if (!v.is_number() && !(kind->second == Kind::NumberOrBool && v.is_boolean()))
            return what + " must be a number";
          break;
        case Kind::Positive:
          if (!v.is_number() || v.get<long double>() <= 0) return what + " must be a number greater than 0";
          break;
        case Kind::Pattern:
          if (!v.is_string()) return what + " must be a string";
          if (const Pattern& p = pattern(v.get<std::string>()); !p.error.empty())
            return "the pattern " + show(v) + " at " + at + " " + p.error;
          break;
        case Kind::Bool:
          if (!v.is_boolean()) return what + " must be true or false";
          break;
        case Kind::Types: {
          bool ok = v.is_string() || (v.is_array() && !v.empty());
          for (const json& t : v.is_array() ? v : json::array({v}))
            ok = ok && t.is_string() && kTypes.count(t.get<std::string>());
          if (!ok) return what + " must name types among null, boolean, object, array, number, integer, string";
          break;
        }
        case Kind::Names:
          if (!isNames(v)) return what + " must be an array of property names";
          break;
        case Kind::Array:
          if (!v.is_array()) return what + " must be an array";
          break;
        case Kind::DependentRequired:
          if (!v.is_object() || !std::all_of(v.begin(), v.end(), isNames))
            return what + " must map property names to arrays of names";
          break;
        case Kind::Ref: {
          const json* target = resolve(root, v);
          if (!target)
            return what + " (" + show(v) +
                   ") is not supported: only \"#/...\" pointers that resolve inside this schema are";
          if (walked.insert(target).second) why = sub(*target, v.get<std::string>().substr(1));
          break;
        }
        case Kind::Id:
          if (&s != &root) return what + " (a nested schema resource) is not supported";
          break;
        case Kind::Unsupported: return what + " is not supported";
      }
      if (!why.empty()) return why;
    }
    return "";
  }

  static Found locate(const Path* at, std::string message) {
    std::vector<const Path*> chain;
    for (const Path* p = at; p; p = p->up) chain.push_back(p);
    Found f{"", std::move(message), {}};
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      std::string token = (*it)->is_index ? to_string((*it)->index) : std::string((*it)->key);
      f.path += "/" + escapeToken(token);
      f.order.push_back((*it)->is_index ? std::string(20 - token.size(), '0') + token : token);
    }
    return f;
  }
  void add(Out& out, const Path* at, std::string message) {
    if (!out.full()) out.list.push_back(locate(at, std::move(message)));
  }
  bool charge(size_t n) {
    steps += n;
    if (steps > kMaxSteps && abort.empty()) abort = "the arguments are too large or the schema too complex to check";
    return abort.empty();
  }
  // Whether `text` contains a match of `p`; nullopt (and abort set) when that cannot be checked.
  std::optional<bool> search(const std::string& p, const std::string& text, const Path* at) {
    const Pattern& compiled = pattern(p);
    const size_t length = codePoints(text);
    if (!compiled.error.empty() && abort.empty()) abort = "the pattern " + quote(p) + " " + compiled.error;
    if (compiled.lookahead && length > kMaxLookaheadInput && abort.empty())
      abort = "a string at " + rootOr(locate(at, "").path) + " is " + to_string(length) +
              " characters, too long to check against the pattern " + quote(p) +
              " (at most 1000, as it has a lookahead)";
    // What matching costs in steps: linear in the text and the pattern's size, squared with a lookahead.
    if (!charge((length + 1) * (compiled.weight / 32 + 1) / 4 * (compiled.lookahead ? length / 4 + 1 : 1)))
      return std::nullopt;
    return std::regex_match(widen(text), compiled.anywhere);
  }
  bool valid(const json& s, const json& v, const Path* at, int depth, int refs) {
    Out o{1, {}};
    check(s, v, at, depth, refs, o);
    return o.list.empty();
  }

  // Adds to `out` the violations of `v` (at `at`) against the subschema `s`.
  void check(const json& s, const json& v, const Path* at, int depth, int refs, Out& out) {
    if (out.full() || !charge(1)) return;
    if (depth > kMaxDepth) abort = "the schema nests deeper than " + to_string(kMaxDepth) + " levels";
    if (!abort.empty()) return;
    if (s.is_boolean()) {
      if (!s.get<bool>()) add(out, at, "no value is allowed here");
      return;
    }
    if (!s.is_object()) {
      abort = "the schema is " + withArticle(typeOf(s)) + ", not an object or boolean";
      return;
    }
    auto kw = [&](const char* name) -> const json* {
      auto it = s.find(name);
      return it == s.end() ? nullptr : &*it;
    };
    auto apply = [&](const json& sub, const json& value, const Path* where) {
      check(sub, value, where, depth + 1, refs, out);
    };
    auto sizes = [&](const char* lo, const char* hi, size_t n, const std::string& verb, const std::string& unit) {
      if (auto min = count(kw(lo)); min && n < *min)
        add(out, at, verb + " at least " + to_string(*min) + unit + ", got " + to_string(n));
      if (auto max = count(kw(hi)); max && n > *max)
        add(out, at, verb + " at most " + to_string(*max) + unit + ", got " + to_string(n));
    };

    if (const json* ref = kw("$ref")) {
      const json* target = resolve(root, *ref);
      if (refs >= kMaxRefs)
        abort = "the schema's $ref chain is deeper than " + to_string(kMaxRefs) +
                " (a recursive schema this deep cannot be checked)";
      else if (!target) abort = "the schema's $ref " + show(*ref) + " does not resolve";
      else check(*target, v, at, depth + 1, refs + 1, out);
      if (!abort.empty()) return;
    }
    if (const json* t = kw("type")) {
      std::vector<std::string> names;
      for (const json& n : t->is_array() ? *t : json::array({*t}))
        if (n.is_string()) names.push_back(n.get<std::string>());
      if (std::none_of(names.begin(), names.end(), [&](const std::string& n) { return hasType(v, n); })) {
        std::string want;
        for (size_t i = 0; i < names.size(); ++i)
          want += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + withArticle(names[i]);
        add(out, at, "must be " + want + ", got " + typeOf(v));
      }
    }
    if (const json* e = kw("enum"); e && e->is_array() && std::find(e->begin(), e->end(), v) == e->end()) {
      std::string list;
      for (size_t i = 0; i < e->size() && i < 20; ++i) list += (i ? ", " : "") + show((*e)[i]);
      add(out, at, "must be one of " + list + (e->size() > 20 ? ", ..." : ""));
    }
    if (const json* c = kw("const"); c && *c != v) add(out, at, "must be " + show(*c));

    if (v.is_number()) {
      const long double x = v.get<long double>();  // exact for every int64, uint64 and double
      auto bound = [&](const char* name, bool lower, bool exclusive) {
        const json* b = kw(name);
        if (!b || !b->is_number()) return;
        const long double y = b->get<long double>();
        if (lower ? (exclusive ? x > y : x >= y) : (exclusive ? x < y : x <= y)) return;
        const std::string op = std::string(lower ? ">" : "<") + (exclusive ? "" : "=");
        add(out, at, "must be " + op + " " + show(*b) + ", got " + show(v));
      };
      const json *emin = kw("exclusiveMinimum"), *emax = kw("exclusiveMaximum");
      bound("minimum", true, emin && emin->is_boolean() && emin->get<bool>());  // draft-04's boolean form
      bound("maximum", false, emax && emax->is_boolean() && emax->get<bool>());
      bound("exclusiveMinimum", true, true);
      bound("exclusiveMaximum", false, true);
      if (const json* m = kw("multipleOf"); m && m->is_number() && m->get<long double>() > 0) {
        bool ok;
        if (v.is_number_integer() && m->is_number_integer()) {
          auto magnitude = [](const json& j) -> uint64_t {
            if (j.is_number_unsigned()) return j.get<uint64_t>();
            const int64_t x = j.get<int64_t>();
            return x < 0 ? uint64_t(-(x + 1)) + 1 : uint64_t(x);
          };
          ok = magnitude(v) % magnitude(*m) == 0;
        } else {
          long double q = x / m->get<long double>();
          ok = std::isfinite(q) && std::fabs(q - std::nearbyint(q)) < 1e-9L;
        }
        if (!ok) add(out, at, "must be a multiple of " + show(*m) + ", got " + show(v));
      }
    }

    if (v.is_string()) {
      const std::string& text = v.get_ref<const std::string&>();
      sizes("minLength", "maxLength", codePoints(text), "must be", " characters");
      if (const json* p = kw("pattern"); p && p->is_string()) {
        auto found = search(p->get<std::string>(), text, at);
        if (!found) return;
        if (!*found) add(out, at, "must match the pattern " + show(*p));
      }
    }

    if (v.is_array()) {
      const size_t n = v.size();
      sizes("minItems", "maxItems", n, "must have", " items");
      if (const json* u = kw("uniqueItems"); u && u->is_boolean() && u->get<bool>() && n > 1 && charge(n)) {
        std::vector<size_t> order(n);
        for (size_t i = 0; i < n; ++i) order[i] = i;
        std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
        for (size_t i = 1; i < n; ++i) {
          if (v[order[i - 1]] != v[order[i]]) continue;
          add(out, at, "items " + to_string(std::min(order[i - 1], order[i])) + " and " +
                           to_string(std::max(order[i - 1], order[i])) + " are equal; items must be unique");
          break;
        }
      }
      // draft-07: items (an array) then additionalItems; 2020-12: prefixItems then items.
      const json* items = kw("items");
      const json* tuple = kw("prefixItems") ? kw("prefixItems") : items && items->is_array() ? items : nullptr;
      const json* rest = items && !items->is_array() ? items : tuple ? kw("additionalItems") : nullptr;
      const size_t fixed = tuple && tuple->is_array() ? tuple->size() : 0;
      if (rest && rest->is_boolean() && !rest->get<bool>() && n > fixed)
        add(out, at, "must have at most " + to_string(fixed) + " items, got " + to_string(n));
      for (size_t i = 0; i < n && !out.full() && abort.empty(); ++i) {
        Path item{at, {}, i, true};
        if (i < fixed) apply((*tuple)[i], v[i], &item);
        else if (rest && !rest->is_boolean()) apply(*rest, v[i], &item);
      }
      if (const json* c = kw("contains")) {
        size_t matching = 0;
        for (size_t i = 0; i < n && abort.empty(); ++i) {
          Path item{at, {}, i, true};
          matching += valid(*c, v[i], &item, depth + 1, refs);
        }
        const uint64_t min = count(kw("minContains")).value_or(1);
        const auto max = count(kw("maxContains"));
        const std::string found = " matching the \"contains\" schema, found " + to_string(matching);
        if (matching < min)
          add(out, at, "must contain at least " + to_string(min) + (min == 1 ? " item" : " items") + found);
        if (max && matching > *max) add(out, at, "must contain at most " + to_string(*max) + " items" + found);
      }
    }

    if (v.is_object()) {
      sizes("minProperties", "maxProperties", v.size(), "must have", " properties");
      if (const json* r = kw("required"); r && r->is_array())
        for (const json& name : *r)
          if (name.is_string() && !v.contains(name.get<std::string>())) add(out, at, show(name) + " is required");
      for (const char* name : {"dependentRequired", "dependencies", "dependentSchemas"}) {
        for (const auto& [key, then] : objectOr(kw(name)).items()) {
          if (!v.contains(key)) continue;
          if (!then.is_array()) apply(then, v, at);
          else
            for (const json& dep : then)
              if (dep.is_string() && !v.contains(dep.get<std::string>()))
                add(out, at, show(dep) + " is required when " + quote(key) + " is present");
        }
      }
      const json *props = kw("properties"), *patternProps = kw("patternProperties");
      const json *additional = kw("additionalProperties"), *names = kw("propertyNames");
      for (const auto& [key, value] : v.items()) {
        if (out.full() || !abort.empty()) break;
        Path child{at, key, 0, false};
        if (names) {
          Out o{1, {}};
          check(*names, json(key), at, depth + 1, refs, o);
          if (!o.list.empty())
            add(out, at, "property name " + quote(key) + " is invalid: " + clip(o.list[0].message, 200));
        }
        bool matched = false;
        if (objectOr(props).contains(key)) matched = true, apply(props->at(key), value, &child);
        for (const auto& [p, sub] : objectOr(patternProps).items()) {
          auto found = search(p, key, at);
          if (!found) return;
          if (*found) matched = true, apply(sub, value, &child);
        }
        if (matched || !additional) continue;
        if (!additional->is_boolean() || additional->get<bool>()) {
          apply(*additional, value, &child);
          continue;
        }
        std::string allowed;
        for (const auto& [name, _] : objectOr(props).items()) allowed += (allowed.empty() ? "" : ", ") + quote(name);
        if (!allowed.empty()) allowed = " (allowed: " + allowed + ")";
        add(out, at, "property " + quote(key) + " is not allowed" + allowed);
      }
    }

    if (const json* all = kw("allOf"); all && all->is_array())
      for (const json& sub : *all) apply(sub, v, at);
    for (const std::string name : {"anyOf", "oneOf"}) {
      const json* alternatives = kw(name.c_str());
      if (!alternatives || !alternatives->is_array()) continue;
      std::vector<size_t> matching;
      std::string why;  // the first violation of each of the first 5 alternatives
      for (size_t i = 0; i < alternatives->size() && abort.empty(); ++i) {
        Out o{1, {}};
        check((*alternatives)[i], v, at, depth + 1, refs, o);
        if (o.list.empty()) matching.push_back(i);
        else if (i < 5)
          why += "; [" + to_string(i) + "] " + clip(formatViolation({o.list[0].path, o.list[0].message}), 200);
      }
      if (!abort.empty()) return;
      if (matching.empty())
        add(out, at, "must match at least one of the " + name + " alternatives: " + why.substr(2) +
                         (alternatives->size() > 5 ? "; ..." : ""));
      else if (matching.size() > 1 && name == "oneOf")
        add(out, at, "must match exactly one of the oneOf alternatives, but matches [" + to_string(matching[0]) +
                         "] and [" + to_string(matching[1]) + "]");
    }
    if (const json* no = kw("not"); no && valid(*no, v, at, depth + 1, refs) && abort.empty())
      add(out, at, "must not match the schema under \"not\": " + show(*no));
    if (const json* cond = kw("if")) {
      const json* branch = valid(*cond, v, at, depth + 1, refs) ? kw("then") : kw("else");
      if (branch && abort.empty()) apply(*branch, v, at);
    }
  }
};

}  // namespace

std::vector<SchemaViolation> validateJson(const json& schema, const json& instance, size_t limit) {
  try {
    Checker checker{schema, {}, {}, 0, {}};
    if (std::string why = checker.unsupported(); !why.empty())
      return {{"", "the tool's input schema cannot be checked: " + why}};
    if (depthOf(instance, kMaxDepth) > kMaxDepth)
      return {{"", "the arguments nest deeper than " + to_string(kMaxDepth) + " levels"}};
    Out out{kMaxFound, {}};
    checker.check(schema, instance, nullptr, 0, 0, out);
    if (!checker.abort.empty()) return {{"", checker.abort}};
    auto byDocument = [](const Found& a, const Found& b) { return a.order < b.order; };
    std::stable_sort(out.list.begin(), out.list.end(), byDocument);
    std::vector<SchemaViolation> result;
    for (size_t i = 0; i < out.list.size() && i < std::max<size_t>(limit, 1); ++i)
      result.push_back({std::move(out.list[i].path), std::move(out.list[i].message)});
    return result;
  } catch (const std::exception& e) {
    return {{"", std::string("the arguments could not be checked: ") + e.what()}};
  }
}

std::string unsupportedSchemaFeature(const json& schema) {
  try {
    Checker checker{schema, {}, {}, 0, {}};
    return checker.unsupported();
  } catch (const std::exception& e) {
    return std::string("the schema could not be read: ") + e.what();
  }
}

std::string formatViolation(const SchemaViolation& v) { return rootOr(v.path) + ": " + v.message; }

}  // namespace paddock::gateway
