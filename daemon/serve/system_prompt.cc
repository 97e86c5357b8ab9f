// render_system_prompt (declared in kaizen_service.h): the persona keys as one system message.
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "daemon/serve/kaizen_service.h"

namespace kaizen::daemon {

namespace {

std::string read_file(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(what + " '" + path + "' cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) {
    s.replace(p, from.size(), to);
  }
}

}  // namespace

std::string render_system_prompt(const Config& config) {
  std::string tmpl = config.system_prompt;
  if (!config.system_prompt_file.empty())
    tmpl = read_file(config.system_prompt_file, "system_prompt_file");
  if (tmpl.empty()) return "";
  std::string company;
  if (!config.company_info_file.empty())
    company = read_file(config.company_info_file, "company_info_file");
  replace_all(tmpl, "{agent_name}", config.agent_name);
  replace_all(tmpl, "{agent_creator}", config.agent_creator);
  replace_all(tmpl, "{company_info}", company);
  return tmpl;
}

}  // namespace kaizen::daemon
