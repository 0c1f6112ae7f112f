// The skill gym's building blocks: its random numbers, lexicon and skills (data/gym/).
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "data/gym/gym_random.h"
#include "data/gym/lexicon.h"
#include "data/gym/skills.h"

namespace taskmoe::gym {
namespace {

using ::testing::HasSubstr;

GymState State(std::vector<std::string> items, std::string query = "") {
  return GymState{std::move(items), std::move(query)};
}

std::vector<std::string> Apply(Skill skill, const GymState& state) {
  absl::StatusOr<GymState> result = ApplySkill(skill, state);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? result->items : std::vector<std::string>{};
}

using Items = std::vector<std::string>;

TEST(GymRandom, MatchesPublishedSplitMix64Values) {
  // First outputs of Vigna's reference splitmix64.c seeded with 1234567.
  GymRandom random(1234567);
  EXPECT_EQ(random.Next(), 6457827717110365317ULL);
  EXPECT_EQ(random.Next(), 3203168211198807973ULL);
  EXPECT_EQ(random.Next(), 9817491932198370423ULL);
}

TEST(GymRandom, BelowStaysInRangeAndShuffleIsAPermutation) {
  GymRandom random(7);
  std::set<uint64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const uint64_t value = random.Below(5);
    ASSERT_LT(value, 5u);
    seen.insert(value);
  }
  EXPECT_EQ(seen.size(), 5u);
  std::vector<int> values = {1, 2, 3, 4, 5, 6, 7, 8};
  random.Shuffle(values);
  EXPECT_THAT(values, ::testing::UnorderedElementsAre(1, 2, 3, 4, 5, 6, 7, 8));
  EXPECT_NE(DeriveSeed(1, "a"), DeriveSeed(1, "b"));
  EXPECT_NE(DeriveSeed(1, "a"), DeriveSeed(2, "a"));
}

TEST(GymLexicon, ClassesAreDisjointAndTranslationIsABijection) {
  std::set<std::string> foreign_seen;
  int words = 0;
  for (WordClass word_class : {WordClass::kAnimal, WordClass::kColor, WordClass::kFruit,
                               WordClass::kTool, WordClass::kPositive, WordClass::kNegative}) {
    EXPECT_EQ(WordClassFromName(WordClassName(word_class)), word_class);
    for (const std::string& word : WordsOf(word_class)) {
      ++words;
      EXPECT_EQ(ClassOf(word), word_class) << word;
      std::optional<std::string> foreign = Translate(word);
      ASSERT_TRUE(foreign.has_value()) << word;
      EXPECT_FALSE(ClassOf(*foreign).has_value()) << *foreign << " is also an English word";
      foreign_seen.insert(*foreign);
    }
  }
  EXPECT_EQ(foreign_seen.size(), static_cast<size_t>(words));
  EXPECT_EQ(foreign_seen, std::set<std::string>(ForeignWords().begin(), ForeignWords().end()));
  EXPECT_EQ(Translate("cat"), "zabu");
  EXPECT_FALSE(Translate("7").has_value());
  EXPECT_FALSE(WordClassFromName("planet").has_value());
}

TEST(GymSkills, KnownAnswers) {
  EXPECT_EQ(Apply(Skill::kLookup, State({"cat", "red", "dog", "blue"}, "dog")), Items{"blue"});
  EXPECT_EQ(Apply(Skill::kSpan, State({"a", "(", "b", "c", ")", "d"})), (Items{"b", "c"}));
  EXPECT_EQ(Apply(Skill::kFilter, State({"cat", "red", "fig", "dog"}, "animal")),
            (Items{"cat", "dog"}));
  EXPECT_EQ(Apply(Skill::kFirst, State({"x", "y", "z"})), Items{"x"});
  EXPECT_EQ(Apply(Skill::kLast, State({"x", "y", "z"})), Items{"z"});
  EXPECT_EQ(Apply(Skill::kReverse, State({"x", "y", "z"})), (Items{"z", "y", "x"}));
  // Numbers sort numerically, words by bytes.
  EXPECT_EQ(Apply(Skill::kSort, State({"10", "9", "100", "0"})), (Items{"0", "9", "10", "100"}));
  EXPECT_EQ(Apply(Skill::kSort, State({"pear", "fig", "apple"})),
            (Items{"apple", "fig", "pear"}));
  EXPECT_EQ(Apply(Skill::kDedupe, State({"b", "a", "b", "c", "a"})), (Items{"b", "a", "c"}));
  EXPECT_EQ(Apply(Skill::kTranslate, State({"cat", "dog"})), (Items{"zabu", "kemo"}));
  EXPECT_EQ(Apply(Skill::kIncrement, State({"9", "0", "41"})), (Items{"10", "1", "42"}));
  EXPECT_EQ(Apply(Skill::kCount, State({"a", "b", "a"})), Items{"3"});
  EXPECT_EQ(Apply(Skill::kCount, State({})), Items{"0"});
  EXPECT_EQ(Apply(Skill::kSum, State({"3", "4", "5"})), Items{"12"});
  EXPECT_EQ(Apply(Skill::kMax, State({"3", "14", "5"})), Items{"14"});
  EXPECT_EQ(Apply(Skill::kParity, State({"14"})), Items{"even"});
  EXPECT_EQ(Apply(Skill::kParity, State({"7"})), Items{"odd"});
  EXPECT_EQ(Apply(Skill::kCompare, State({"7", "1", "3"})), Items{"greater"});
  EXPECT_EQ(Apply(Skill::kCompare, State({"2", "9"})), Items{"smaller"});
  EXPECT_EQ(Apply(Skill::kCompare, State({"4", "0", "4"})), Items{"equal"});
  EXPECT_EQ(Apply(Skill::kPolarity, State({"good", "cat", "bad", "kind"})), Items{"positive"});
  EXPECT_EQ(Apply(Skill::kPolarity, State({"sad", "cat"})), Items{"negative"});
  EXPECT_EQ(Apply(Skill::kPolarity, State({"sad", "calm", "fig"})), Items{"neutral"});
  EXPECT_EQ(Apply(Skill::kRotate, State({"x", "y", "z"})), (Items{"y", "z", "x"}));
}

TEST(GymSkills, CompositionIsSequential) {
  // count-class-parity: three animals -> 3 -> odd.
  absl::StatusOr<GymState> result = ApplySkills(
      {Skill::kFilter, Skill::kCount, Skill::kParity},
      State({"cat", "red", "dog", "owl"}, "animal"));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(FormatGymOutput(*result), "odd");
}

TEST(GymSkills, InputsOutsideASkillsDomainAreErrors) {
  const std::vector<std::pair<Skill, GymState>> cases = {
      {Skill::kLookup, State({"cat", "red"}, "dog")},
      {Skill::kLookup, State({"cat", "red", "dog"}, "dog")},
      {Skill::kSpan, State({"a", "b"})},
      {Skill::kSpan, State({"a", ")", "b", "("})},
      {Skill::kFilter, State({"cat"}, "planet")},
      {Skill::kFirst, State({})},
      {Skill::kTranslate, State({"cat", "7"})},
      {Skill::kIncrement, State({"cat"})},
      {Skill::kSum, State({})},
      {Skill::kMax, State({"1", "x"})},
      {Skill::kParity, State({"1", "2"})},
      {Skill::kCompare, State({"1"})},
      {Skill::kRotate, State({})},
  };
  for (const auto& [skill, state] : cases) {
    absl::StatusOr<GymState> result = ApplySkill(skill, state);
    ASSERT_FALSE(result.ok()) << SkillName(skill) << " on " << FormatGymInput(state);
    EXPECT_THAT(std::string(result.status().message()),
                HasSubstr(absl::StrCat("skill '", SkillName(skill), "'")));
  }
}

TEST(GymSkills, NamesRoundTripAndUnknownNamesListTheKnownOnes) {
  for (Skill skill : AllSkills()) EXPECT_EQ(SkillFromName(SkillName(skill)).value(), skill);
  absl::StatusOr<Skill> unknown = SkillFromName("juggle");
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("lookup, span"));
}

TEST(GymSkills, InputTextRoundTripsAndBadTextIsRejected) {
  const GymState state = State({"cat", "red", "dog", "blue"}, "dog");
  EXPECT_EQ(FormatGymInput(state), "cat red dog blue | dog");
  EXPECT_EQ(ParseGymInput("cat red dog blue | dog").value(), state);
  EXPECT_EQ(ParseGymInput("1 ( 2 3 )").value(), State({"1", "(", "2", "3", ")"}));
  EXPECT_FALSE(ParseGymInput("").ok());
  EXPECT_FALSE(ParseGymInput(" | dog").ok());
  EXPECT_FALSE(ParseGymInput("cat | two words").ok());
}

// One generated gym (the make_gym binary, default flags, seed 1) shared by the tests below.

}  // namespace
}  // namespace taskmoe::gym
