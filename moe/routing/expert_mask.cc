#include "moe/routing/expert_mask.h"

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace taskmoe {
namespace {

// Label of all-layer row `row`: enc<i> or dec<i>.
std::string LayerLabel(int64_t row, const ModelShape& shape) {
  return row < shape.encoder_layers ? absl::StrCat("enc", row)
                                    : absl::StrCat("dec", row - shape.encoder_layers);
}

// All-layer rows that `label` names: every row for "*", else the one row of enc<i> / dec<i>.
absl::StatusOr<std::vector<int64_t>> LayerRows(absl::string_view label, const ModelShape& shape) {
  const int64_t layers = shape.encoder_layers + shape.decoder_layers;
  if (label == "*") {
    std::vector<int64_t> rows(layers);
    for (int64_t row = 0; row < layers; ++row) rows[row] = row;
    return rows;
  }
  int64_t index = -1;
  absl::string_view number = label;
  const bool encoder = absl::ConsumePrefix(&number, "enc");
  const bool decoder = !encoder && absl::ConsumePrefix(&number, "dec");
  const int64_t count = encoder ? shape.encoder_layers : shape.decoder_layers;
  if ((!encoder && !decoder) || !absl::SimpleAtoi(number, &index) || index < 0 || index >= count) {
    return absl::InvalidArgumentError(absl::StrCat(
        "layer '", label, "' is not one of the model's: enc0..enc", shape.encoder_layers - 1,
        ", dec0..dec", shape.decoder_layers - 1, " or * (every layer)"));
  }
  return std::vector<int64_t>{encoder ? index : shape.encoder_layers + index};
}

}  // namespace

absl::StatusOr<at::Tensor> ParseEvaluationExpertMask(const std::string& spec,
                                                     const ModelShape& shape) {
  if (absl::StripAsciiWhitespace(spec).empty()) return at::Tensor();
  at::Tensor mask = at::zeros({shape.encoder_layers + shape.decoder_layers, shape.experts});
  for (absl::string_view raw : absl::StrSplit(spec, ',')) {
    const absl::string_view item = absl::StripAsciiWhitespace(raw);
    const std::vector<absl::string_view> parts = absl::StrSplit(item, ':');
    auto bad_item = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat("eval_expert_mask item '", item, "': ", why));
    };
    if (parts.size() != 2) return bad_item("expected <layer>:<expert>, e.g. enc0:1 or *:2");
    absl::StatusOr<std::vector<int64_t>> rows =
        LayerRows(absl::StripAsciiWhitespace(parts[0]), shape);
    if (!rows.ok()) return bad_item(rows.status().message());
    int64_t expert = -1;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(parts[1]), &expert) || expert < 0 ||
        expert >= shape.experts) {
      return bad_item(absl::StrCat("expert '", parts[1], "' is not an index in [0, ",
                                   shape.experts, ")"));
    }
    for (int64_t row : *rows) mask[row][expert] = 1.0;
  }
  const at::Tensor kept = (mask == 0).sum(-1);
  for (int64_t row = 0; row < mask.size(0); ++row) {
    if (kept[row].item<int64_t>() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "eval_expert_mask '", spec, "' masks every expert of layer ", LayerLabel(row, shape),
          "; a layer must keep at least one"));
    }
  }
  return mask;
}

}  // namespace taskmoe
