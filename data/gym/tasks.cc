#include "data/gym/tasks.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "data/gym/lexicon.h"
#include <glog/logging.h>

namespace taskmoe::gym {
namespace {

std::vector<std::string> AllNouns() {
  std::vector<std::string> nouns;
  for (WordClass word_class : NounClasses()) {
    const std::vector<std::string>& words = WordsOf(word_class);
    nouns.insert(nouns.end(), words.begin(), words.end());
  }
  return nouns;
}

const std::vector<std::string>& Nouns() {
  static const auto* nouns = new std::vector<std::string>(AllNouns());
  return *nouns;
}

std::vector<std::string> RandomNouns(GymRandom& random, int count) {
  std::vector<std::string> words;
  for (int i = 0; i < count; ++i) words.push_back(random.Pick(Nouns()));
  return words;
}

std::vector<std::string> RandomNumbers(GymRandom& random, int count, int max_value) {
  std::vector<std::string> numbers;
  for (int i = 0; i < count; ++i) numbers.push_back(absl::StrCat(random.InRange(0, max_value)));
  return numbers;
}

// `count` distinct nouns, in random order.
std::vector<std::string> DistinctNouns(GymRandom& random, int count) {
  std::vector<std::string> pool = Nouns();
  random.Shuffle(pool);
  pool.resize(count);
  return pool;
}

// An adjective of either polarity half the time, a noun otherwise.
std::vector<std::string> RandomPolarWords(GymRandom& random, int count) {
  std::vector<std::string> words;
  for (int i = 0; i < count; ++i) {
    switch (random.Below(4)) {
      case 0:
        words.push_back(random.Pick(WordsOf(WordClass::kPositive)));
        break;
      case 1:
        words.push_back(random.Pick(WordsOf(WordClass::kNegative)));
        break;
      default:
        words.push_back(random.Pick(Nouns()));
    }
  }
  return words;
}

// Wraps a random run of `min_length`..`max_length` items (at most all of them) in "(" ")".
std::vector<std::string> WithSpan(GymRandom& random, std::vector<std::string> items,
                                  int min_length, int max_length) {
  const int size = static_cast<int>(items.size());
  const int length = random.InRange(min_length, std::min(max_length, size));
  const int start = random.InRange(0, size - length);
  items.insert(items.begin() + start + length, ")");
  items.insert(items.begin() + start, "(");
  return items;
}

std::vector<std::string> Pairs(const std::vector<std::string>& keys,
                               const std::vector<std::string>& values) {
  std::vector<std::string> items;
  for (size_t i = 0; i < keys.size(); ++i) {
    items.push_back(keys[i]);
    items.push_back(values[i]);
  }
  return items;
}

GymTask Task(std::string name, std::string category, std::string sub_category,
             std::string metric, GymSplit split, InputKind input, std::vector<Skill> skills) {
  return GymTask{std::move(name), /*id=*/"",     std::move(category), std::move(sub_category),
                 std::move(metric), split,          input,               std::move(skills)};
}

}  // namespace

absl::string_view GymSplitName(GymSplit split) {
  switch (split) {
    case GymSplit::kTrain:
      return "train";
    case GymSplit::kDev:
      return "dev";
    case GymSplit::kTest:
      return "test";
  }
  LOG(FATAL) << "unknown split " << static_cast<int>(split);
}

std::vector<GymTask> GymTasksWithIds(uint64_t seed) {
  std::vector<GymTask> tasks = GymTasks();
  std::vector<int> numbers(tasks.size());
  for (size_t i = 0; i < numbers.size(); ++i) numbers[i] = static_cast<int>(i);
  GymRandom random(DeriveSeed(seed, "task ids"));
  random.Shuffle(numbers);
  for (size_t i = 0; i < tasks.size(); ++i) tasks[i].id = absl::StrFormat("task%02d", numbers[i]);
  return tasks;
}

// A change to this table or to the input ranges in GenerateInput changes what a gym of the same
// options holds: bump kGymTableVersion (gym_writer.h) with it.
const std::vector<GymTask>& GymTasks() {
  using S = Skill;
  using K = InputKind;
  constexpr GymSplit kTrain = GymSplit::kTrain, kDev = GymSplit::kDev, kTest = GymSplit::kTest;
  const std::string cls = "classification", qa = "qa", gen = "conditional generation",
                    other = "other";
  static const auto* tasks = new std::vector<GymTask>{
      // Upstream (train) tasks: every skill but the control `rotate` appears here.
      Task("polarity", cls, "sentiment analysis", "Classification-F1", kTrain, K::kPolarWords,
           {S::kPolarity}),
      Task("compare-ends", cls, "comparison", "ACC", kTrain, K::kDigits, {S::kCompare}),
      Task("sum-parity", cls, "parity", "Classification-F1", kTrain, K::kDigits,
           {S::kSum, S::kParity}),
      Task("count-parity", cls, "parity", "Classification-F1", kTrain, K::kManyWords,
           {S::kCount, S::kParity}),
      Task("lookup-parity", cls, "parity", "ACC", kTrain, K::kNumberPairs,
           {S::kLookup, S::kParity}),
      Task("span-polarity", cls, "sentiment analysis", "Classification-F1", kTrain,
           K::kSpanPolarWords, {S::kSpan, S::kPolarity}),
      Task("max-parity", cls, "parity", "ACC", kTrain, K::kNumbers, {S::kMax, S::kParity}),
      Task("key-lookup", qa, "lookup", "EM", kTrain, K::kWordPairs, {S::kLookup}),
      Task("span-copy", qa, "machine reading comprehension", "QA-F1", kTrain, K::kSpanWords,
           {S::kSpan}),
      Task("sort-first", qa, "position", "EM", kTrain, K::kWords, {S::kSort, S::kFirst}),
      Task("dedupe-last", qa, "position", "EM", kTrain, K::kRepeatedWords,
           {S::kDedupe, S::kLast}),
      Task("filter-first", qa, "lookup", "EM", kTrain, K::kClassQuery, {S::kFilter, S::kFirst}),
      Task("span-last", qa, "machine reading comprehension", "EM", kTrain, K::kSpanWords,
           {S::kSpan, S::kLast}),
      Task("lookup-translate", qa, "lookup", "EM", kTrain, K::kWordPairs,
           {S::kLookup, S::kTranslate}),
      Task("reverse-words", gen, "transformation", "Rouge-L", kTrain, K::kWords, {S::kReverse}),
      Task("sort-words", gen, "transformation", "Rouge-L", kTrain, K::kWords, {S::kSort}),
      Task("sort-numbers", gen, "transformation", "EM", kTrain, K::kNumbers, {S::kSort}),
      Task("translate-words", gen, "translation", "Rouge-L", kTrain, K::kWords,
           {S::kTranslate}),
      Task("dedupe-words", gen, "transformation", "Rouge-L", kTrain, K::kRepeatedWords,
           {S::kDedupe}),
      Task("increment-numbers", gen, "arithmetic", "EM", kTrain, K::kNumbers, {S::kIncrement}),
      Task("filter-words", gen, "selection", "Rouge-L", kTrain, K::kClassQuery, {S::kFilter}),
      Task("filter-reverse", gen, "selection", "Rouge-L", kTrain, K::kClassQuery,
           {S::kFilter, S::kReverse}),
      Task("translate-reverse", gen, "translation", "Rouge-L", kTrain, K::kWords,
           {S::kTranslate, S::kReverse}),
      Task("count-items", other, "counting", "EM", kTrain, K::kManyWords, {S::kCount}),
      Task("count-class", other, "counting", "EM", kTrain, K::kClassQuery,
           {S::kFilter, S::kCount}),
      Task("count-unique", other, "counting", "EM", kTrain, K::kRepeatedWords,
           {S::kDedupe, S::kCount}),
      Task("sum-digits", other, "regression", "Pearson-Correlation", kTrain, K::kDigits,
           {S::kSum}),
      Task("max-number", other, "regression", "EM", kTrain, K::kNumbers, {S::kMax}),
      Task("span-sum", other, "regression", "Pearson-Correlation", kTrain, K::kSpanDigits,
           {S::kSpan, S::kSum}),
      // Held-out dev tasks: train skills in combinations no train task has.
      Task("lookup-increment", qa, "lookup", "EM", kDev, K::kNumberPairs,
           {S::kLookup, S::kIncrement}),
      Task("span-reverse", gen, "transformation", "Rouge-L", kDev, K::kSpanWords,
           {S::kSpan, S::kReverse}),
      Task("filter-sort", gen, "selection", "Rouge-L", kDev, K::kClassQuery,
           {S::kFilter, S::kSort}),
      Task("count-class-parity", cls, "parity", "Classification-F1", kDev, K::kClassQuery,
           {S::kFilter, S::kCount, S::kParity}),
      // Held-out test tasks: new combinations, and two controls with the unseen `rotate`.
      Task("span-translate", gen, "translation", "Rouge-L", kTest, K::kSpanWords,
           {S::kSpan, S::kTranslate}),
      Task("dedupe-sort", gen, "transformation", "Rouge-L", kTest, K::kRepeatedWords,
           {S::kDedupe, S::kSort}),
      Task("span-max", other, "regression", "EM", kTest, K::kSpanDigits, {S::kSpan, S::kMax}),
      Task("unique-parity", cls, "parity", "Classification-F1", kTest, K::kRepeatedWords,
           {S::kDedupe, S::kCount, S::kParity}),
      Task("span-compare", cls, "comparison", "ACC", kTest, K::kSpanDigits,
           {S::kSpan, S::kCompare}),
      Task("filter-last", qa, "lookup", "EM", kTest, K::kClassQuery, {S::kFilter, S::kLast}),
      Task("max-increment", other, "regression", "EM", kTest, K::kNumbers,
           {S::kMax, S::kIncrement}),
      Task("rotate-words", gen, "transformation", "Rouge-L", kTest, K::kWords, {S::kRotate}),
      Task("filter-rotate", gen, "selection", "Rouge-L", kTest, K::kClassQuery,
           {S::kFilter, S::kRotate}),
  };
  return *tasks;
}

GymState GenerateInput(InputKind kind, GymRandom& random) {
  GymState state;
  switch (kind) {
    case InputKind::kWords:
      state.items = RandomNouns(random, random.InRange(4, 10));
      break;
    case InputKind::kManyWords:
      state.items = RandomNouns(random, random.InRange(8, 16));
      break;
    case InputKind::kRepeatedWords: {
      const std::vector<std::string> distinct = DistinctNouns(random, random.InRange(2, 4));
      const int count = random.InRange(4, 8);
      for (int i = 0; i < count; ++i) state.items.push_back(random.Pick(distinct));
      break;
    }
    case InputKind::kDigits:
      state.items = RandomNumbers(random, random.InRange(2, 5), 9);
      break;
    case InputKind::kNumbers:
      state.items = RandomNumbers(random, random.InRange(3, 6), 49);
      break;
    case InputKind::kClassQuery:
      state.items = RandomNouns(random, random.InRange(4, 8));
      state.query = std::string(WordClassName(*ClassOf(random.Pick(state.items))));
      break;
    case InputKind::kWordPairs:
    case InputKind::kNumberPairs: {
      const int pairs = random.InRange(3, 5);
      // Keys and word values are all distinct, so a key never also appears as a value.
      std::vector<std::string> keys = DistinctNouns(random, 2 * pairs);
      std::vector<std::string> values(keys.begin() + pairs, keys.end());
      keys.resize(pairs);
      if (kind == InputKind::kNumberPairs) values = RandomNumbers(random, pairs, 49);
      state.items = Pairs(keys, values);
      state.query = random.Pick(keys);
      break;
    }
    case InputKind::kSpanWords:
      state.items = WithSpan(random, RandomNouns(random, random.InRange(5, 10)), 1, 3);
      break;
    case InputKind::kSpanDigits:
      state.items = WithSpan(random, RandomNumbers(random, random.InRange(4, 8), 9), 2, 4);
      break;
    case InputKind::kPolarWords:
      state.items = RandomPolarWords(random, random.InRange(3, 6));
      break;
    case InputKind::kSpanPolarWords:
      state.items = WithSpan(random, RandomPolarWords(random, random.InRange(4, 7)), 2, 4);
      break;
  }
  return state;
}

}  // namespace taskmoe::gym
