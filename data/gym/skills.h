#ifndef TASKMOE_DATA_GYM_SKILLS_H_
#define TASKMOE_DATA_GYM_SKILLS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace taskmoe::gym {

// What a gym example's input says, and what every skill reads and rewrites: a list of
// space-separated items (words, numbers, "(" and ")") and an optional query word.
// Input text is `item item ...` or `item item ... | query`; output text is the items.
struct GymState {
  std::vector<std::string> items;
  std::string query;

  bool operator==(const GymState& other) const {
    return items == other.items && query == other.query;
  }
};

// The primitive skills; every gym task is an ordered composition of them.
enum class Skill {
  kLookup,     // the item right after the first occurrence of the query (a key)
  kSpan,       // the items between "(" and ")"
  kFilter,     // the items whose lexicon class is named by the query
  kFirst,      // the first item
  kLast,       // the last item
  kReverse,    // the items in reverse order
  kSort,       // ascending: numerically if all items are numbers, else by bytes
  kDedupe,     // drop repeated items, keeping first occurrences
  kTranslate,  // each word through the fixed lexicon into the pseudo-language
  kIncrement,  // each number plus one
  kCount,      // the number of items
  kSum,        // the sum of the numbers
  kMax,        // the largest number
  kParity,     // "even" or "odd" for a single number
  kCompare,    // the first number against the last: "greater", "smaller" or "equal"
  kPolarity,   // positive minus negative words: "positive", "negative" or "neutral"
  kRotate,     // the first item moved to the end
};

// Every skill, in enum order.
const std::vector<Skill>& AllSkills();
absl::string_view SkillName(Skill skill);
absl::string_view SkillDescription(Skill skill);
absl::StatusOr<Skill> SkillFromName(absl::string_view name);

// Applies one skill. Fails (InvalidArgument, naming the skill and the state) when the
// state is outside the skill's domain, e.g. `parity` of a word or `lookup` of an absent key.
absl::StatusOr<GymState> ApplySkill(Skill skill, const GymState& state);
absl::StatusOr<GymState> ApplySkills(const std::vector<Skill>& skills, GymState state);

// Text <-> state. ParseGymInput fails on empty text, empty items, or an empty query.
std::string FormatGymInput(const GymState& state);
absl::StatusOr<GymState> ParseGymInput(absl::string_view text);
std::string FormatGymOutput(const GymState& state);

}  // namespace taskmoe::gym

#endif  // TASKMOE_DATA_GYM_SKILLS_H_
