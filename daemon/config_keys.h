// kaizend's config keys (daemon/config.h): THE table, in the order --check-config prints
// it, each key with its help, its range or parser, its display, and whether it is secret
// (declared on the key itself, so reordering the table cannot print a secret). Internal to
// config.cc and its tests.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "daemon/config.h"

namespace kaizen::daemon {

// One config key: how to set it from text and how to show it.
struct Key {
  std::string name;
  std::string help;
  // Parses `text` into the config; returns an error message (without the key name).
  std::function<std::string(Config&, const std::string& text)> set;
  std::function<std::string(const Config&)> show;
  bool secret = false;
};

const std::vector<Key>& keys();
// `s` without leading and trailing whitespace.
std::string trim(std::string s);
// nullptr when no key has this name.
const Key* find_key(const std::string& name);

}  // namespace kaizen::daemon
