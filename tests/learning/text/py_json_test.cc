// py_json_dumps: hand-checked strings from CPython's json.dumps / repr(float), then the same
// values through jinja2's `tojson` (transformers' filter, tools/ref/chat_template_ref.py).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "learning/text/py_json.h"
#include "text_test_util.h"

namespace kaizen::text {
namespace {

using ojson = nlohmann::ordered_json;

TEST(PyJson, FloatRepr) {
  const std::vector<std::pair<double, std::string>> cases = {
      {0.1, "0.1"},
      {2.0, "2.0"},
      {-0.0, "-0.0"},
      {0.0, "0.0"},
      {1.5, "1.5"},
      {100.0, "100.0"},
      {1e15, "1000000000000000.0"},
      {1e16, "1e+16"},
      {1.2345678901234567e16, "1.2345678901234568e+16"},
      {0.0001, "0.0001"},
      {0.00001, "1e-05"},
      {1.5e-7, "1.5e-07"},
      {1e21, "1e+21"},
      {1.5e300, "1.5e+300"},
      {5e-324, "5e-324"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {0.1 + 0.2, "0.30000000000000004"},
      {123456789.125, "123456789.125"},
      {-2.5e-5, "-2.5e-05"},
      {9007199254740993.0, "9007199254740992.0"},
  };
  for (const auto& [x, want] : cases) EXPECT_EQ(py_float_repr(x), want) << want;
  EXPECT_EQ(py_json_dumps(ojson(std::nan(""))), "NaN");
  EXPECT_EQ(py_json_dumps(ojson(std::numeric_limits<double>::infinity())), "Infinity");
  EXPECT_EQ(py_json_dumps(ojson(-std::numeric_limits<double>::infinity())), "-Infinity");
}

TEST(PyJson, StringsKeysAndIndent) {
  EXPECT_EQ(py_json_dumps(ojson("a\"b\\c\n\r\t\b\f\x01\x1f\x7f é 😀 </tag>")),
            "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\x7f é 😀 </tag>\"");
  const auto v = ojson::parse(R"({"z": 1, "a": [true, null, -3, 18446744073709551615], "m": {}})");
  EXPECT_EQ(py_json_dumps(v), R"({"z": 1, "a": [true, null, -3, 18446744073709551615], "m": {}})");
  EXPECT_EQ(py_json_dumps(v, 4),
            "{\n    \"z\": 1,\n    \"a\": [\n        true,\n        null,\n        -3,\n"
            "        18446744073709551615\n    ],\n    \"m\": {}\n}");
  EXPECT_EQ(py_json_dumps(ojson::parse("[[], {}, [1]]"), 0), "[\n[],\n{},\n[\n1\n]\n]");
  EXPECT_EQ(py_json_dumps(ojson::array()), "[]");
  EXPECT_THROW(py_json_dumps(ojson::binary({1, 2})), std::invalid_argument);
}

TEST(PyJson, MatchesPythonJsonDumps) {
  const std::string py = testing::jinja_python();
  if (py.empty()) GTEST_SKIP() << "no python with jinja2 (apt install python3-jinja2)";
  std::vector<ojson> values;
  for (
      const char* text : {
          R"({"type": "function", "function": {"name": "get_weather", "description": "Thời tiết ở \"Hà Nội\" — 日本語 😀\n\ttab", "parameters": {"type": "object", "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["location"]}}})",
          R"({"min": 0.0, "max": 1.0, "step": 0.05, "tiny": 1e-7, "huge": 1e21, "neg": -2.5e-5, "third": 0.3333333333333333, "big_int": 9223372036854775807, "neg_int": -9223372036854775808, "u64": 18446744073709551615})",
          R"([[], {}, [[[]]], {"a": {"b": {"c": [1, 2.5, "x", null, true, false]}}}])",
          R"({"ctrl": "\u0000\u0001\u001f\u007f\u0080\u2028\u2029\ufeff", "slash": "a/b\\c", "quote": "\"'"})",
          R"({"z": 1, "a": 2, "m": {"y": 1, "b": 2}})",
          R"("just a string")",
          R"(12.0)",
          R"(-0.0)",
          R"(null)",
      }) {
    values.push_back(ojson::parse(text));
  }
  // Random doubles over the whole range (random bit patterns), all finite.
  std::mt19937_64 rng(7);
  ojson floats = ojson::array();
  while (floats.size() < 400) {
    uint64_t bits = rng();
    double d;
    std::memcpy(&d, &bits, sizeof d);
    if (std::isfinite(d)) floats.push_back(d);
  }
  for (int k = 0; k < 100; ++k)
    floats.push_back(
        std::ldexp(static_cast<double>(rng() % 100000), -static_cast<int>(rng() % 40)));
  values.push_back(floats);

  ojson req = {
      {"template", "{{ x | tojson }}\x1e{{ x | tojson(indent=4) }}\x1e{{ x | tojson(indent=0) }}"},
      {"cases", ojson::array()}};
  for (const auto& v : values) {
    req["cases"].push_back(
        {{"messages", ojson::array()}, {"add_generation_prompt", false}, {"x", v}});
  }
  const auto ref = testing::run_chat_template_ref(py, req);
  ASSERT_EQ(ref.size(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    const std::string want = ref[i].get<std::string>();
    EXPECT_EQ(py_json_dumps(values[i]) + "\x1e" + py_json_dumps(values[i], 4) + "\x1e" +
                  py_json_dumps(values[i], 0),
              want)
        << "value " << i;
  }
}

}  // namespace
}  // namespace kaizen::text
