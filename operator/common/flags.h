// Command-line flags for every Paddock binary: --name=value or --name value, --bool or
// --bool=false, and a generated --help that lists every flag with its default.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace paddock {

class Flags {
 public:
  Flags(std::string program, std::string summary) : program_(std::move(program)), summary_(std::move(summary)) {}

  void add(std::string name, std::string* target, std::string help);
  void add(std::string name, bool* target, std::string help);
  void add(std::string name, int* target, std::string help);
  void add(std::string name, double* target, std::string help);
  void add(std::string name, std::chrono::milliseconds* target, std::string help);
  // Text printed after the flag list (examples, environment variables).
  void setEpilog(std::string text) { epilog_ = std::move(text); }

  enum class Outcome { Ok, Help, Version, Error };
  // Parses argv[1..]. Arguments that are not flags go to `positional` when given, else are an error.
  // On Error, `error` names the flag and what is wrong with it.
  Outcome parse(int argc, char** argv, std::string& error, std::vector<std::string>* positional = nullptr);
  std::string usage() const;

  // Parses, and on --help prints usage (on --version the version line) to stdout and exits 0; on
  // error prints it with a hint and exits 2.
  void parseOrExit(int argc, char** argv, std::vector<std::string>* positional = nullptr);

 private:
  struct Flag {
    std::string name, help, default_text;
    bool is_bool = false;
    std::function<bool(const std::string&)> set;
  };
  std::string program_, summary_, epilog_;
  std::vector<Flag> flags_;
};

}  // namespace paddock
