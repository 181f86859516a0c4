// Command-line flags of one subcommand: "--name value" or "--name=value", booleans bare.
// An unknown flag, or one missing its value, is an error that lists the flags the command knows.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace convoy {

struct FlagSpec {
  std::string name;  // without "--"
  std::string help;
  std::string default_value;  // "" means required unless boolean
  bool boolean = false;
  bool required = false;
};

class Flags {
 public:
  Flags(std::string command, std::string summary, std::vector<FlagSpec> specs);
  // Parses argv after the subcommand name. help() is true when --help was given.
  Status Parse(int argc, char** argv);
  bool help() const { return help_; }
  std::string Usage() const;

  const std::string& Get(const std::string& name) const { return values_.at(name); }
  bool Has(const std::string& name) const { return !values_.at(name).empty(); }
  bool GetBool(const std::string& name) const { return values_.at(name) == "true"; }
  StatusOr<int> GetInt(const std::string& name) const;
  StatusOr<double> GetDouble(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::string command_, summary_;
  std::vector<FlagSpec> specs_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
  bool help_ = false;
};

}  // namespace convoy
