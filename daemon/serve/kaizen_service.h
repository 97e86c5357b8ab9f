// The production Service (daemon/service.h): the engine thread for generation, the
// Store for logging every request/answer/feedback, the adapter registry for `kaizen`,
// `kaizen@vN` and `base`, and the configured system prompt with its cached KV prefix.
#pragma once

#include <memory>

#include "daemon/config.h"
#include "daemon/serve/chat_admission.h"
#include "daemon/service.h"

namespace kaizen::daemon {

// Loads the model (device/threads from config), opens the Store under
// config.state_dir/db, restores the active adapter, starts the engine.
// Errors (unreadable model, locked DB, bad company-info file) come back as an Error
// whose message names the file and the problem.
// limits: the chat limits the server's admission gate reads too (serve/chat_admission.h),
// so a SIGHUP reload reaches the engine; null = the service's own, from config.
Result<std::unique_ptr<Service>> make_kaizen_service(const Config& config,
                                                     const StartupProgress& progress,
                                                     std::shared_ptr<ChatLimits> limits = nullptr);

// The system message the persona keys produce (system_prompt or system_prompt_file with
// {agent_name}, {agent_creator}, {company_info} filled in); empty when none is set.
// Throws std::runtime_error naming an unreadable file.
std::string render_system_prompt(const Config& config);

}  // namespace kaizen::daemon
