#include "daemon/serve/service_metrics.h"

#include <sstream>

namespace kaizen::daemon {

std::string engine_metrics_text(const Engine& engine, uint64_t active_version) {
  const EngineStats s = engine.stats();
  std::ostringstream o;
  o << "# HELP kaizen_engine_queue_depth Chat jobs waiting for the engine.\n"
    << "# TYPE kaizen_engine_queue_depth gauge\nkaizen_engine_queue_depth " << engine.waiting() << "\n"
    << "# TYPE kaizen_engine_active gauge\nkaizen_engine_active " << engine.active() << "\n"
    << "# TYPE kaizen_completion_tokens_total counter\nkaizen_completion_tokens_total " << s.tokens_generated << "\n"
    << "# TYPE kaizen_prompt_tokens_total counter\nkaizen_prompt_tokens_total " << s.prompt_tokens << "\n"
    << "# TYPE kaizen_engine_jobs_total counter\nkaizen_engine_jobs_total{result=\"done\"} " << s.jobs_done
    << "\nkaizen_engine_jobs_total{result=\"failed\"} " << s.jobs_failed << "\n"
    << "# HELP kaizen_engine_decode_forwards_total Batched decode forwards (rows / forwards = mean batch).\n"
    << "# TYPE kaizen_engine_decode_forwards_total counter\nkaizen_engine_decode_forwards_total "
    << s.decode_forwards << "\n"
    << "# TYPE kaizen_engine_decode_rows_total counter\nkaizen_engine_decode_rows_total " << s.decode_rows << "\n"
    << "# HELP kaizen_conversation_cache_total Prompts that continued a kept chat's KV.\n"
    << "# TYPE kaizen_conversation_cache_total counter\nkaizen_conversation_cache_total{result=\"hit\"} "
    << s.conversation_hits << "\n"
    << "# TYPE kaizen_conversation_tokens_reused_total counter\nkaizen_conversation_tokens_reused_total "
    << s.conversation_tokens_reused << "\n"
    << "# TYPE kaizen_conversation_cache_bytes gauge\nkaizen_conversation_cache_bytes "
    << s.conversation_cache_bytes << "\n"
    << "# HELP kaizen_engine_prefill_chunks_total Prefill forwards (a prompt fed in n chunks counts n).\n"
    << "# TYPE kaizen_engine_prefill_chunks_total counter\nkaizen_engine_prefill_chunks_total "
    << s.prefill_chunks << "\n"
    << "# TYPE kaizen_prefix_cache_total counter\nkaizen_prefix_cache_total{result=\"hit\"} " << s.prefix_hits
    << "\nkaizen_prefix_cache_total{result=\"miss\"} " << s.prefix_misses << "\n"
    << "# TYPE kaizen_prefix_tokens_reused_total counter\nkaizen_prefix_tokens_reused_total "
    << s.prefix_tokens_reused << "\n"
    << "# HELP kaizen_active_adapter_version The adapter `kaizen` answers with (0 = base).\n"
    << "# TYPE kaizen_active_adapter_version gauge\nkaizen_active_adapter_version " << active_version << "\n";
  return o.str();
}

std::string store_metrics_text(const storage::Store& store, uint64_t unlogged_chats) {
  std::ostringstream o;
  o << "# HELP kaizen_store_write_failures_total Store writes refused by the disk (full or failing).\n"
    << "# TYPE kaizen_store_write_failures_total counter\nkaizen_store_write_failures_total "
    << store.failed_writes() << "\n"
    << "# HELP kaizen_store_writable 1 while the store takes writes, 0 while the disk refuses them.\n"
    << "# TYPE kaizen_store_writable gauge\nkaizen_store_writable " << (store.write_health().ok() ? 1 : 0) << "\n"
    << "# HELP kaizen_chat_unlogged_total Chats answered while the store could not log them.\n"
    << "# TYPE kaizen_chat_unlogged_total counter\nkaizen_chat_unlogged_total " << unlogged_chats << "\n";
  return o.str();
}

}  // namespace kaizen::daemon
