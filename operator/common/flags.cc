#include "operator/common/flags.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "operator/common/duration.h"
#include "operator/common/version.h"

namespace paddock {

void Flags::add(std::string name, std::string* target, std::string help) {
  flags_.push_back({name, std::move(help), target->empty() ? "" : "\"" + *target + "\"", false,
                    [target](const std::string& v) { *target = v; return true; }});
}

void Flags::add(std::string name, bool* target, std::string help) {
  flags_.push_back({name, std::move(help), *target ? "true" : "false", true, [target](const std::string& v) {
                      if (v == "true" || v == "1" || v.empty()) *target = true;
                      else if (v == "false" || v == "0") *target = false;
                      else return false;
                      return true;
                    }});
}

void Flags::add(std::string name, int* target, std::string help) {
  flags_.push_back({name, std::move(help), std::to_string(*target), false, [target](const std::string& v) {
                      char* end = nullptr;
                      long n = std::strtol(v.c_str(), &end, 10);
                      if (v.empty() || *end) return false;
                      *target = static_cast<int>(n);
                      return true;
                    }});
}

void Flags::add(std::string name, double* target, std::string help) {
  std::ostringstream d;
  d << *target;
  flags_.push_back({name, std::move(help), d.str(), false, [target](const std::string& v) {
                      char* end = nullptr;
                      double n = std::strtod(v.c_str(), &end);
                      if (v.empty() || *end) return false;
                      *target = n;
                      return true;
                    }});
}

void Flags::add(std::string name, std::chrono::milliseconds* target, std::string help) {
  flags_.push_back({name, std::move(help), formatDuration(*target), false, [target](const std::string& v) {
                      auto d = parseDuration(v);
                      if (!d) return false;
                      *target = *d;
                      return true;
                    }});
}

Flags::Outcome Flags::parse(int argc, char** argv, std::string& error, std::vector<std::string>* positional) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return Outcome::Help;
    if (arg == "--version") return Outcome::Version;
    if (arg == "--") {
      for (++i; i < argc; ++i) {
        if (!positional) { error = std::string("unexpected argument \"") + argv[i] + "\""; return Outcome::Error; }
        positional->push_back(argv[i]);
      }
      break;
    }
    if (arg.rfind("--", 0) != 0 || arg.size() == 2) {
      if (!positional) {
        error = "unexpected argument \"" + arg + "\"";
        return Outcome::Error;
      }
      positional->push_back(arg);
      continue;
    }
    std::string name = arg.substr(2), value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    Flag* flag = nullptr;
    for (auto& f : flags_) {
      if (f.name == name) flag = &f;
    }
    if (!flag) {
      error = "unknown flag --" + name;
      return Outcome::Error;
    }
    if (!has_value && !flag->is_bool) {
      if (i + 1 >= argc) {
        error = "flag --" + name + " needs a value";
        return Outcome::Error;
      }
      value = argv[++i];
    }
    if (!flag->set(value)) {
      error = "invalid value \"" + value + "\" for --" + name + ": " + flag->help;
      return Outcome::Error;
    }
  }
  return Outcome::Ok;
}

std::string Flags::usage() const {
  std::ostringstream out;
  out << program_ << ": " << summary_ << "\n\nUsage: " << program_ << " [flags]\n\nFlags:\n";
  for (const auto& f : flags_) {
    out << "  --" << f.name << (f.is_bool ? "" : " value") << "\n      " << f.help;
    if (!f.default_text.empty()) out << " (default " << f.default_text << ")";
    out << "\n";
  }
  out << "  --help\n      Print this help and exit.\n";
  out << "  --version\n      Print the version and the commit built, and exit.\n";
  if (!epilog_.empty()) out << "\n" << epilog_ << "\n";
  return out.str();
}

void Flags::parseOrExit(int argc, char** argv, std::vector<std::string>* positional) {
  std::string error;
  switch (parse(argc, argv, error, positional)) {
    case Outcome::Ok: return;
    case Outcome::Help:
      std::fputs(usage().c_str(), stdout);
      std::exit(0);
    case Outcome::Version:
      std::puts(versionLine(program_).c_str());
      std::exit(0);
    case Outcome::Error:
      std::fprintf(stderr, "%s: %s\nRun '%s --help' for the list of flags.\n", program_.c_str(), error.c_str(),
                   program_.c_str());
      std::exit(2);
  }
}

}  // namespace paddock
