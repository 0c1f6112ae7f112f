#ifndef TASKMOE_MOE_REPORT_HTML_H_
#define TASKMOE_MOE_REPORT_HTML_H_

// The pieces of a self-contained HTML page: escaped text, images inline as data: URIs, tables,
// and the page around them (inline style, no script, no external reference). Every text that
// comes from files goes through HtmlEscape.

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace taskmoe {

// `text` with & < > " ' replaced by character references: safe inside elements and quoted
// attribute values.
std::string HtmlEscape(absl::string_view text);

// "data:<mime_type>;base64,<bytes in base64>".
std::string DataUri(absl::string_view mime_type, absl::string_view bytes);

// An <img> whose source is the data: URI of `bytes`, with `alt` as its text; with the image's
// width and height when the bytes are a PNG or a GIF, so the page lays out before it decodes.
std::string InlineImage(absl::string_view mime_type, absl::string_view bytes,
                        absl::string_view alt);

// <tag>escaped text</tag>.
std::string Element(absl::string_view tag, absl::string_view text);

// A table of text cells (each escaped); rows shorter than the header are padded.
std::string HtmlTable(const std::vector<std::string>& header,
                      const std::vector<std::vector<std::string>>& rows);

// A section heading <h2 id="...">title</h2>; characters of `id` other than letters, digits, '-'
// and '_' become '-', so that it is a plain fragment name.
std::string SectionHeading(absl::string_view id, absl::string_view title);

// One line of links to sections: (id, title) pairs as SectionHeading names them.
std::string Contents(const std::vector<std::pair<std::string, std::string>>& sections);

// A collapsed block: `summary` (text) shown, `inner_html` revealed on a click.
std::string Details(absl::string_view summary, absl::string_view inner_html);

// `value` with `decimals` digits after the point, with a leading + when `sign` and it is
// positive; "undefined" when it is NaN.
std::string FormatValue(double value, int decimals, bool sign = false);

// The image of a drawn PNG, or a note with the reason it could not be drawn.
std::string InlinePngOrNote(const absl::StatusOr<std::string>& png, absl::string_view alt);

// A paragraph of text in the muted style of notes.
std::string Note(absl::string_view text);

// A whole page: `title` (text) as its title and first heading, then `body_html`.
std::string HtmlPage(absl::string_view title, absl::string_view body_html);

}  // namespace taskmoe

#endif  // TASKMOE_MOE_REPORT_HTML_H_
