#include "moe/report/html.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace taskmoe {
namespace {

constexpr char kStyle[] = R"css(
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 24px auto; max-width: 1100px;
       color: #222; line-height: 1.45; padding: 0 16px; }
h1 { font-size: 24px; border-bottom: 2px solid #0072b2; padding-bottom: 6px; }
h2 { font-size: 19px; margin-top: 32px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 16px; margin-top: 22px; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 13px; }
th, td { border: 1px solid #d0d0d0; padding: 3px 8px; text-align: left; }
th { background: #eef3f8; }
tr:nth-child(even) td { background: #fafafa; }
img { max-width: 100%; height: auto; display: block; margin: 8px 0; }
pre { background: #f6f6f6; padding: 10px; overflow-x: auto; font-size: 12px; }
details { margin: 8px 0; }
summary { cursor: pointer; color: #0072b2; }
.note { color: #666; font-size: 13px; }
.contents { font-size: 14px; }
a { color: #0072b2; }
)css";

std::string FragmentName(absl::string_view id) {
  std::string name(id);
  for (char& c : name) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_') c = '-';
  }
  return name;
}

// Width and height of PNG bytes (the IHDR chunk, big-endian) or GIF bytes (the logical screen,
// little-endian).
std::optional<std::pair<uint32_t, uint32_t>> ImageSize(absl::string_view bytes) {
  const auto byte = [&bytes](size_t i) {
    return static_cast<uint32_t>(static_cast<uint8_t>(bytes[i]));
  };
  if (bytes.size() >= 24 && absl::StartsWith(bytes, "\x89PNG\r\n\x1a\n") &&
      bytes.substr(12, 4) == "IHDR") {
    const auto big_endian = [&byte](size_t i) {
      return byte(i) << 24 | byte(i + 1) << 16 | byte(i + 2) << 8 | byte(i + 3);
    };
    return std::make_pair(big_endian(16), big_endian(20));
  }
  if (bytes.size() >= 10 &&
      (absl::StartsWith(bytes, "GIF87a") || absl::StartsWith(bytes, "GIF89a"))) {
    return std::make_pair(byte(6) | byte(7) << 8, byte(8) | byte(9) << 8);
  }
  return std::nullopt;
}

}  // namespace

std::string HtmlEscape(absl::string_view text) {
  std::string escaped;
  escaped.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        escaped += "&amp;";
        break;
      case '<':
        escaped += "&lt;";
        break;
      case '>':
        escaped += "&gt;";
        break;
      case '"':
        escaped += "&quot;";
        break;
      case '\'':
        escaped += "&#39;";
        break;
      default:
        escaped += c;
    }
  }
  return escaped;
}

std::string DataUri(absl::string_view mime_type, absl::string_view bytes) {
  return absl::StrCat("data:", mime_type, ";base64,", absl::Base64Escape(bytes));
}

std::string InlineImage(absl::string_view mime_type, absl::string_view bytes,
                        absl::string_view alt) {
  const std::optional<std::pair<uint32_t, uint32_t>> size = ImageSize(bytes);
  return absl::StrCat(
      "<img src=\"", DataUri(mime_type, bytes), "\" alt=\"", HtmlEscape(alt), "\"",
      size.has_value() ? absl::StrCat(" width=\"", size->first, "\" height=\"", size->second, "\"")
                       : "",
      ">\n");
}

std::string Element(absl::string_view tag, absl::string_view text) {
  return absl::StrCat("<", tag, ">", HtmlEscape(text), "</", tag, ">\n");
}

std::string HtmlTable(const std::vector<std::string>& header,
                      const std::vector<std::vector<std::string>>& rows) {
  std::string html = "<table>\n<tr>";
  for (const std::string& cell : header) absl::StrAppend(&html, "<th>", HtmlEscape(cell), "</th>");
  absl::StrAppend(&html, "</tr>\n");
  for (const std::vector<std::string>& row : rows) {
    absl::StrAppend(&html, "<tr>");
    for (size_t i = 0; i < std::max(row.size(), header.size()); ++i) {
      absl::StrAppend(&html, "<td>", i < row.size() ? HtmlEscape(row[i]) : "", "</td>");
    }
    absl::StrAppend(&html, "</tr>\n");
  }
  absl::StrAppend(&html, "</table>\n");
  return html;
}

std::string SectionHeading(absl::string_view id, absl::string_view title) {
  return absl::StrCat("<h2 id=\"", FragmentName(id), "\">", HtmlEscape(title), "</h2>\n");
}

std::string Contents(const std::vector<std::pair<std::string, std::string>>& sections) {
  std::vector<std::string> links;
  for (const auto& [id, title] : sections) {
    links.push_back(
        absl::StrCat("<a href=\"#", FragmentName(id), "\">", HtmlEscape(title), "</a>"));
  }
  return absl::StrCat("<p class=\"contents\">", absl::StrJoin(links, " · "), "</p>\n");
}

std::string Details(absl::string_view summary, absl::string_view inner_html) {
  return absl::StrCat("<details><summary>", HtmlEscape(summary), "</summary>\n", inner_html,
                      "</details>\n");
}

std::string FormatValue(double value, int decimals, bool sign) {
  if (std::isnan(value)) return "undefined";
  return sign ? absl::StrFormat("%+.*f", decimals, value)
              : absl::StrFormat("%.*f", decimals, value);
}

std::string InlinePngOrNote(const absl::StatusOr<std::string>& png, absl::string_view alt) {
  if (!png.ok()) return Note(absl::StrCat(alt, ": not drawn (", png.status().message(), ")"));
  return InlineImage("image/png", *png, alt);
}

std::string Note(absl::string_view text) {
  return absl::StrCat("<p class=\"note\">", HtmlEscape(text), "</p>\n");
}

std::string HtmlPage(absl::string_view title, absl::string_view body_html) {
  return absl::StrCat("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
                      "<title>", HtmlEscape(title), "</title>\n<style>", kStyle,
                      "</style>\n</head>\n<body>\n<h1>", HtmlEscape(title), "</h1>\n", body_html,
                      "</body>\n</html>\n");
}

}  // namespace taskmoe
