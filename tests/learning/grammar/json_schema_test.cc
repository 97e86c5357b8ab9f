// Schema keywords: what each admits and refuses, byte for byte, and the SchemaError messages.
#include "learning/grammar/json_schema.h"

#include <gtest/gtest.h>

#include "grammar_test_util.h"

namespace kaizen::grammar {
namespace {

using testing::is_prefix;
using testing::matches;

std::shared_ptr<const Grammar> schema(const char* text) {
  return json_schema_grammar(nlohmann::ordered_json::parse(text));
}

// The SchemaError message for a schema, or "" if it compiles.
std::string error_of(const char* text, const std::string& prefix = "schema") {
  try {
    json_schema_grammar(nlohmann::ordered_json::parse(text), prefix);
  } catch (const SchemaError& e) {
    return e.what();
  }
  return "";
}

std::string nested(int depth) {
  std::string s;
  for (int i = 0; i < depth; ++i) s += "{\"a\": ";
  s += "1";
  for (int i = 0; i < depth; ++i) s += "}";
  return s;
}

TEST(JsonObject, AcceptsObjects) {
  const auto g = json_object_grammar();
  EXPECT_TRUE(matches(g, "{}"));
  EXPECT_TRUE(matches(g, R"({"a": 1, "b": [true, false, null], "c": {"d": "e"}})"));
  EXPECT_TRUE(matches(g, R"({"a":1,"b":[]})"));
  EXPECT_TRUE(matches(g, "{\n  \"a\": 1,\n  \"b\": -0.5e+10\n}"));
  EXPECT_TRUE(matches(g, R"({ "a": [ 1, 2 ] })"));
  EXPECT_TRUE(matches(g, R"({"": "", "\u00e9\n": "x"})"));  // keys: any string
  EXPECT_FALSE(matches(g, "[]"));
  EXPECT_FALSE(matches(g, "\"a\""));
  EXPECT_FALSE(matches(g, " {}"));  // nothing around the text
  EXPECT_FALSE(is_prefix(g, "{} "));
  EXPECT_FALSE(matches(g, R"({"a": 01})"));
  EXPECT_FALSE(matches(g, R"({"a" : 1})"));          // nothing before ':'
  EXPECT_FALSE(matches(g, R"({"a": 1 , "b": 2})"));  // ... or ','
  EXPECT_FALSE(matches(g, R"({"a":  1})"));          // one space after ':'
  EXPECT_FALSE(matches(g, R"({"a":1,})"));
  EXPECT_FALSE(matches(g, R"({a: 1})"));
  EXPECT_FALSE(matches(g, "{\t\"a\": 1}"));
  EXPECT_TRUE(matches(g, "{\n" + std::string(kMaxIndent, ' ') + "\"a\": 1\n}"));
  EXPECT_FALSE(matches(g, "{\n" + std::string(kMaxIndent + 1, ' ') + "\"a\": 1\n}"));
}

TEST(JsonObject, NestingDepthIsBounded) {
  const auto g = json_object_grammar();
  EXPECT_TRUE(matches(g, nested(kMaxAnyDepth)));
  EXPECT_FALSE(matches(g, nested(kMaxAnyDepth + 1)));
  auto arrays = [](int n) { return "{\"b\": " + std::string(n, '[') + std::string(n, ']') + "}"; };
  EXPECT_TRUE(matches(g, arrays(kMaxAnyDepth - 1)));
  EXPECT_FALSE(matches(g, arrays(kMaxAnyDepth)));
}

TEST(JsonSchema, Numbers) {
  const auto num = schema(R"({"type": "number"})");
  for (const char* ok : {"0", "-0", "1", "-12", "3.25", "1e5", "1E+05", "-0.5e-3", "10.0"}) {
    EXPECT_TRUE(matches(num, ok)) << ok;
  }
  for (const char* bad : {"01", "-", "1.", ".5", "+1", "1e", "1e+", "0x1", "1.5.2", "NaN", "--1"}) {
    EXPECT_FALSE(matches(num, bad)) << bad;
  }
  EXPECT_TRUE(matches(num, std::string(kMaxIntDigits, '9')));
  EXPECT_FALSE(matches(num, std::string(kMaxIntDigits + 1, '9')));
  EXPECT_TRUE(matches(num, "1." + std::string(kMaxFracDigits, '5')));
  EXPECT_FALSE(matches(num, "1." + std::string(kMaxFracDigits + 1, '5')));
  EXPECT_TRUE(matches(num, "1e" + std::string(kMaxExpDigits, '9')));
  EXPECT_FALSE(matches(num, "1e" + std::string(kMaxExpDigits + 1, '9')));
  const auto integer = schema(R"({"type": "integer"})");
  EXPECT_TRUE(matches(integer, "-42"));
  EXPECT_FALSE(matches(integer, "4.0"));
  EXPECT_FALSE(matches(integer, "4e2"));
}

TEST(JsonSchema, BooleanNullAndTypeLists) {
  EXPECT_TRUE(matches(schema(R"({"type": "boolean"})"), "true"));
  EXPECT_TRUE(matches(schema(R"({"type": "boolean"})"), "false"));
  EXPECT_FALSE(matches(schema(R"({"type": "boolean"})"), "null"));
  EXPECT_TRUE(matches(schema(R"({"type": "null"})"), "null"));
  const auto g = schema(R"({"type": ["string", "null"], "maxLength": 2})");
  EXPECT_TRUE(matches(g, "null"));
  EXPECT_TRUE(matches(g, "\"ab\""));
  EXPECT_FALSE(matches(g, "\"abc\""));
  EXPECT_FALSE(matches(g, "1"));
  const auto n = schema(R"({"type": ["integer", "number"]})");
  EXPECT_TRUE(matches(n, "1.5"));
  EXPECT_TRUE(matches(n, "7"));
}

TEST(JsonSchema, StringEscapesAndUtf8) {
  const auto g = schema(R"({"type": "string"})");
  for (const char* ok : {R"("")", R"("a b")", R"("\"\\\/\b\f\n\r\t")", R"("\u00e9\u0000\uFFFF")",
                         "\"\xC3\xA9\"", "\"\xE6\x97\xA5\"", "\"\xF0\x9F\x98\x80\"", "\"\x7F\""}) {
    EXPECT_TRUE(matches(g, ok)) << ok;
  }
  for (const char* bad : {R"("\x")", R"("\u12")", R"("\ud800")", R"("\uDFFF")", R"("\')",
                          "\"\x01\"", "\"a\nb\"", "\"\xC0\x80\"", "\"\xED\xA0\x80\"",
                          "\"\xF4\x90\x80\x80\"", "\"\x80\"", "\"\xE6\x97\"", "\"\xFF\""}) {
    EXPECT_FALSE(matches(g, bad)) << bad;
  }
  EXPECT_TRUE(matches(g, R"("\ud7ff\ue000")"));  // either side of the surrogates
}

TEST(JsonSchema, StringLengthsCountCodePoints) {
  const auto g = schema(R"({"type": "string", "minLength": 2, "maxLength": 3})");
  EXPECT_FALSE(matches(g, "\"a\""));
  EXPECT_TRUE(matches(g, "\"ab\""));
  EXPECT_TRUE(matches(g, "\"\xC3\xA9\xE6\x97\xA5\xF0\x9F\x98\x80\""));  // 3 code points, 9 bytes
  EXPECT_TRUE(matches(g, R"("\n\u00e9")"));                             // escapes count one each
  EXPECT_FALSE(matches(g, "\"abcd\""));
  EXPECT_FALSE(is_prefix(g, "\"abcd"));
  EXPECT_FALSE(is_prefix(g, "\"abc\\"));  // an escape would be the fourth
  const auto empty = schema(R"({"type": "string", "maxLength": 0})");
  EXPECT_TRUE(matches(empty, "\"\""));
  EXPECT_FALSE(is_prefix(empty, "\"a"));
}

TEST(JsonSchema, EnumAndConst) {
  const auto g = schema(R"({"enum": ["red", "green", "re", 1, null, {"k": [1, "x"]}, 2.5]})");
  for (const char* ok :
       {"\"red\"", "\"re\"", "\"green\"", "1", "null", R"({"k":[1,"x"]})", "2.5"}) {
    EXPECT_TRUE(matches(g, ok)) << ok;
  }
  for (const char* bad : {"\"r\"", "\"blue\"", "2", R"({"k": [1, "x"]})", "true"}) {
    EXPECT_FALSE(matches(g, bad)) << bad;
  }
  EXPECT_TRUE(matches(schema(R"({"const": "a\"b"})"), R"("a\"b")"));
  EXPECT_FALSE(matches(schema(R"({"const": "a\"b"})"), R"("ab")"));
  // type and lengths filter the values
  const auto f = schema(R"({"type": "string", "maxLength": 2, "enum": ["a", "abc", 1]})");
  EXPECT_TRUE(matches(f, "\"a\""));
  EXPECT_FALSE(matches(f, "\"abc\""));
  EXPECT_FALSE(matches(f, "1"));
  EXPECT_TRUE(matches(schema(R"({"type": "integer", "enum": [1.0, 1.5]})"), "1.0"));
}

TEST(JsonSchema, ObjectPropertiesInSchemaOrder) {
  const auto g = schema(R"({"type": "object", "properties": {
      "b": {"type": "integer"}, "a": {"type": "string"}, "c": {"type": "boolean"}},
      "required": ["a"]})");
  EXPECT_TRUE(matches(g, R"({"a": "x"})"));
  EXPECT_TRUE(matches(g, R"({"b": 1, "a": "x"})"));
  EXPECT_TRUE(matches(g, R"({"b": 1, "a": "x", "c": true})"));
  EXPECT_TRUE(matches(g, R"({"a": "x", "c": false})"));
  EXPECT_TRUE(matches(g, "{\n  \"b\": 1,\n  \"a\": \"x\"\n}"));
  EXPECT_FALSE(matches(g, R"({"a": "x", "b": 1})"));  // out of order
  EXPECT_FALSE(matches(g, R"({"b": 1})"));            // a is required
  EXPECT_FALSE(matches(g, R"({})"));
  EXPECT_FALSE(matches(g, R"({"a": "x", "d": 1})"));  // undeclared
  EXPECT_FALSE(matches(g, R"({"a": "x", "a": "y"})"));
  EXPECT_FALSE(matches(g, R"({"a": 1})"));
  // nlohmann::json sorts keys: the same schema through it generates a, b, c.
  const auto sorted =
      json_schema_grammar(nlohmann::json::parse(R"({"type": "object", "properties": {
      "b": {"type": "integer"}, "a": {"type": "string"}}})"));
  EXPECT_TRUE(matches(sorted, R"({"a": "x", "b": 1})"));
  EXPECT_FALSE(matches(sorted, R"({"b": 1, "a": "x"})"));
}

TEST(JsonSchema, ObjectVariants) {
  const auto none = schema(R"({"type": "object", "properties": {}})");
  EXPECT_TRUE(matches(none, "{}"));
  EXPECT_TRUE(matches(none, "{ }"));
  EXPECT_FALSE(matches(none, R"({"a": 1})"));
  const auto any = schema(R"({"type": "object"})");
  EXPECT_TRUE(matches(any, R"({"a": [1, {"b": null}]})"));
  EXPECT_TRUE(matches(schema(R"({"type": "object", "additionalProperties": false})"), "{}"));
  EXPECT_FALSE(
      matches(schema(R"({"type": "object", "additionalProperties": false})"), R"({"a": 1})"));
  const auto same = schema(R"({"type": "object", "properties": {"a": {"type": "null"}},
                               "additionalProperties": true})");
  EXPECT_TRUE(matches(same, R"({"a": null})"));
  EXPECT_FALSE(matches(same, R"({"z": null})"));  // declared properties only
  const auto inferred = schema(R"({"properties": {"a": {"type": "null"}}, "required": ["a"]})");
  EXPECT_TRUE(matches(inferred, R"({"a": null})"));
  const auto deep = schema(R"({"type": "object", "properties": {"p": {"type": "object",
      "properties": {"q": {"type": "array", "items": {"type": "integer"}}}, "required": ["q"]}}})");
  EXPECT_TRUE(matches(deep, R"({"p": {"q": [1, 2]}})"));
  EXPECT_FALSE(matches(deep, R"({"p": {}})"));
  const auto keys = schema(R"({"type": "object", "properties": {"a\"b": {"type": "null"},
                               "\u00e9": {"type": "null"}}, "required": ["a\"b", "\u00e9"]})");
  EXPECT_TRUE(matches(keys, "{\"a\\\"b\": null, \"\xC3\xA9\": null}"));
}

TEST(JsonSchema, Arrays) {
  const auto g =
      schema(R"({"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3})");
  EXPECT_FALSE(matches(g, "[]"));
  EXPECT_TRUE(matches(g, "[1]"));
  EXPECT_TRUE(matches(g, "[1, 2, 3]"));
  EXPECT_TRUE(matches(g, "[\n  1,\n  2\n]"));
  EXPECT_FALSE(matches(g, "[1, 2, 3, 4]"));
  EXPECT_FALSE(is_prefix(g, "[1, 2, 3,"));
  EXPECT_FALSE(matches(g, "[1,]"));
  EXPECT_FALSE(matches(g, "[\"a\"]"));
  const auto any = schema(R"({"type": "array"})");
  EXPECT_TRUE(matches(any, R"([1, "a", [true], {"k": null}])"));
  EXPECT_TRUE(matches(any, "[]"));
  EXPECT_TRUE(matches(schema(R"({"type": "array", "maxItems": 0})"), "[]"));
  EXPECT_FALSE(is_prefix(schema(R"({"type": "array", "maxItems": 0})"), "[1"));
}

TEST(JsonSchema, AnyOfAndAnyValue) {
  const auto g = schema(R"({"anyOf": [
      {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
      {"type": "object", "properties": {"b": {"type": "string"}}, "required": ["b"]},
      {"type": "string", "maxLength": 1}]})");
  EXPECT_TRUE(matches(g, R"({"a": 1})"));
  EXPECT_TRUE(matches(g, R"({"b": "x"})"));
  EXPECT_TRUE(matches(g, R"("x")"));
  EXPECT_FALSE(matches(g, R"({"a": "x"})"));
  EXPECT_FALSE(matches(g, R"("xy")"));
  EXPECT_TRUE(matches(schema("{}"), R"([1, {"a": "b"}])"));
  EXPECT_TRUE(matches(schema("true"), "null"));
  const auto annotated = schema(R"({"title": "T", "description": "d", "$schema": "x", "default": 1,
      "examples": [1], "$comment": "c", "strict": true, "type": "integer"})");
  EXPECT_TRUE(matches(annotated, "5"));
}

// Nested models as pydantic (v2: $defs; v1: definitions, allOf-wrapped refs) and zod write
// them: references resolve within the schema, each target compiled once.
TEST(JsonSchema, LocalRefsAndSingleAllOf) {
  const auto g = schema(R"({"$defs": {"Address": {"type": "object",
      "properties": {"city": {"type": "string"}, "zip": {"$ref": "#/$defs/Zip"}}, "required": ["city"],
      "additionalProperties": false}, "Zip": {"type": "string", "maxLength": 5}},
    "type": "object", "properties": {"home": {"$ref": "#/$defs/Address", "description": "where"},
      "work": {"allOf": [{"$ref": "#/$defs/Address"}], "title": "Work"}},
    "required": ["home"], "additionalProperties": false})");
  EXPECT_TRUE(matches(g, R"({"home": {"city": "Hue"}})"));
  EXPECT_TRUE(matches(g, R"({"home": {"city": "Hue", "zip": "53000"}, "work": {"city": "Hanoi"}})"));
  EXPECT_FALSE(matches(g, R"({"home": {"zip": "1"}})"));                  // Address needs city
  EXPECT_FALSE(matches(g, R"({"home": {"city": "Hue", "zip": "530000"}})"));  // Zip maxLength
  EXPECT_FALSE(matches(g, R"({"work": {"city": "Hue"}})"));               // home required
  const auto v1 = schema(R"({"definitions": {"Color": {"enum": ["red", "blue"]}},
    "type": "array", "items": {"$ref": "#/definitions/Color"}})");
  EXPECT_TRUE(matches(v1, R"(["red", "blue"])"));
  EXPECT_FALSE(matches(v1, R"(["green"])"));
  // JSON pointer escapes: ~1 is '/', ~0 is '~'.
  EXPECT_TRUE(matches(schema(R"({"$defs": {"a/b~": {"type": "null"}}, "$ref": "#/$defs/a~1b~0"})"), "null"));

  EXPECT_EQ(error_of(R"({"$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
                         "$ref": "#/$defs/Node"})"),
            "schema($ref #/$defs/Node).properties.next: recursive '$ref' '#/$defs/Node' is not supported");
  EXPECT_EQ(error_of(R"({"properties": {"self": {"$ref": "#"}}})"),
            "schema.properties.self($ref #).properties.self: recursive '$ref' '#' is not supported");
  EXPECT_EQ(error_of(R"({"$ref": "https://example.com/s.json"})"),
            "schema: '$ref' 'https://example.com/s.json': only references within the schema (#/$defs/...) are "
            "supported");
  EXPECT_EQ(error_of(R"({"$ref": "#/$defs/Missing"})"), "schema: '$ref' '#/$defs/Missing' points to nothing in the schema");
  EXPECT_EQ(error_of(R"({"$ref": "#nope"})"), "schema: '$ref' '#nope' is not a JSON pointer");
  EXPECT_EQ(error_of(R"({"$ref": 1})"), "schema: '$ref' must be a string");
  EXPECT_EQ(error_of(R"({"$defs": {"A": {}}, "$ref": "#/$defs/A", "type": "object"})"),
            "schema: 'type' beside '$ref' is not supported");
  EXPECT_EQ(error_of(R"({"allOf": [{}, {}]})"), "schema: 'allOf' is supported with exactly one schema");
  // A long chain of references is refused before it can exhaust the stack.
  nlohmann::ordered_json chain = {{"$ref", "#/$defs/d0"}};
  for (int i = 0; i < 5000; ++i) chain["$defs"]["d" + std::to_string(i)] = {{"$ref", "#/$defs/d" + std::to_string(i + 1)}};
  chain["$defs"]["d5000"] = {{"type", "null"}};
  try {
    json_schema_grammar(chain);
    ADD_FAILURE() << "a 5000-link $ref chain compiled";
  } catch (const SchemaError& e) {
    EXPECT_NE(std::string(e.what()).find("'$ref's nested more than 32 deep are not supported"), std::string::npos)
        << e.what();
  }
  chain["$defs"]["d20"] = {{"type", "null"}};  // 21 links: fine
  EXPECT_TRUE(matches(json_schema_grammar(chain), "null"));
  EXPECT_EQ(error_of(R"({"$defs": {"A": {"format": "uri"}}, "$ref": "#/$defs/A"})"),
            "schema($ref #/$defs/A): unsupported keyword 'format'");
}

TEST(JsonSchema, ErrorsNameThePathAndKeyword) {
  EXPECT_EQ(
      error_of(R"({"type": "object", "properties": {"age": {"type": "integer", "minimum": 0}}})",
               "response_format.json_schema.schema"),
      "response_format.json_schema.schema.properties.age: unsupported keyword 'minimum'");
  EXPECT_EQ(error_of(R"({"type": "string", "pattern": "a+"})"),
            "schema: unsupported keyword 'pattern'");
  for (const char* kw : {"format", "oneOf", "not", "patternProperties", "prefixItems", "uniqueItems", "if",
                         "multipleOf", "$id", "$anchor"}) {
    const std::string s = std::string(R"({")") + kw + R"(": 1})";
    EXPECT_EQ(error_of(s.c_str()), std::string("schema: unsupported keyword '") + kw + "'");
  }
  EXPECT_EQ(error_of(R"({"type": "array", "items": {"type": "string", "format": "date"}})"),
            "schema.items: unsupported keyword 'format'");
  EXPECT_EQ(error_of(R"({"anyOf": [{"type": "null"}, {"oneOf": []}]})"),
            "schema.anyOf[1]: unsupported keyword 'oneOf'");
  EXPECT_EQ(error_of(R"({"properties": {"a b": {"minimum": 1}}})"),
            "schema.properties[\"a b\"]: unsupported keyword 'minimum'");
  EXPECT_EQ(error_of(R"({"type": 5})"),
            "schema: 'type' must be a type name or a non-empty list of them");
  EXPECT_EQ(error_of(R"({"type": "date"})"), "schema: unsupported type 'date' in 'type'");
  EXPECT_EQ(error_of(R"({"type": "object", "properties": {"a": {}}, "required": ["b"]})"),
            "schema: 'required' names 'b', which is not in 'properties'");
  EXPECT_EQ(error_of(R"({"type": "array", "minItems": 3, "maxItems": 2})"),
            "schema: 'minItems' (3) is greater than 'maxItems' (2)");
  EXPECT_EQ(error_of(R"({"type": "string", "minLength": -1})"),
            "schema: 'minLength' must be a non-negative integer");
  EXPECT_EQ(error_of(R"({"type": "string", "maxLength": "3"})"),
            "schema: 'maxLength' must be a non-negative integer");
  EXPECT_EQ(error_of(R"({"type": "string", "minLength": 20000})"),
            "schema: 'minLength' above 10000 is not supported");
  EXPECT_EQ(error_of(R"({"type": "object", "anyOf": [{}]})"),
            "schema: 'type' beside 'anyOf' is not supported");
  EXPECT_EQ(error_of(R"({"anyOf": []})"), "schema: 'anyOf' must be a non-empty list of schemas");
  EXPECT_EQ(error_of(R"({"enum": [1], "minimum": 0})"), "schema: unsupported keyword 'minimum'");
  EXPECT_EQ(error_of(R"({"enum": [1], "items": {}})"),
            "schema: 'items' beside 'enum' or 'const' is not supported");
  EXPECT_EQ(error_of(R"({"type": "string", "enum": [1]})"),
            "schema: no value of 'enum' or 'const' satisfies 'type', 'minLength' and 'maxLength'");
  EXPECT_EQ(
      error_of(R"({"type": "object", "additionalProperties": {"type": "string"}})"),
      "schema: 'additionalProperties' must be true or false (a schema there is not supported)");
  EXPECT_EQ(error_of(R"({"type": "array", "items": [{}]})"),
            "schema: 'items' as a list (tuple validation) is not supported");
  EXPECT_EQ(error_of(R"({"properties": 1})"), "schema: 'properties' must be an object");
  EXPECT_EQ(error_of("false"), "schema: the schema false admits no value");
  EXPECT_EQ(error_of("3"), "schema: a schema must be an object or a boolean");
  EXPECT_EQ(error_of(R"({"type": "object", "properties": {"a": {"type": "string"}}})"), "");
  // SchemaError is an invalid_argument, for callers that map those to HTTP 400.
  EXPECT_THROW(schema(R"({"pattern": "x"})"), std::invalid_argument);
}

}  // namespace
}  // namespace kaizen::grammar
