// paddock-sandbox's command line (docs/sandbox.md), parsed without I/O:
//   paddock-sandbox install --to DIR [--when-unavailable refuse|warn] [--termination-log FILE]
//   paddock-sandbox [--workspace DIR] [--protected-paths-file FILE] [--writable DIR]...
//                   [--connect-port N]... [--restrict-tcp] [--when-unavailable refuse|warn] -- COMMAND [ARGS...]
// Flags take their value as "--flag value" or "--flag=value".
#pragma once

#include <string>
#include <vector>

namespace paddock::sandbox {

struct InstallOptions {
  std::string to;
  bool refuse_unavailable = true;
  std::string termination_log = "/dev/termination-log";
};

struct RunOptions {
  std::string workspace = "/workspace";
  std::string protected_paths_file;  // empty: nothing protected
  std::vector<std::string> writable;
  std::vector<int> connect_ports;    // empty: TCP connect is not restricted, unless restrict_tcp
  bool restrict_tcp = false;         // --restrict-tcp: TCP connect only to connect_ports, even none
  bool refuse_unavailable = true;
  std::vector<std::string> command;  // after "--"
};

struct Cli {
  enum class Mode { Run, Install, Help, Error } mode = Mode::Error;
  InstallOptions install;
  RunOptions run;
  std::string error;  // Mode::Error: what is wrong and how to fix it
  bool install_help = false;  // Mode::Help: of the install form
};

Cli parseCli(const std::vector<std::string>& args);  // args without argv[0]
std::string runUsage();
std::string installUsage();

// The protected-paths file's globs: one a line, surrounding blanks trimmed, blank lines and "#"
// comments skipped (as the PR stage reads the same list, stage/checks.h).
std::vector<std::string> parseGlobLines(const std::string& text);

}  // namespace paddock::sandbox
