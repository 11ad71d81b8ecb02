"""Data for bench/postgres.sh's raw PostgreSQL side, drawn as bench/lib/memory_insert.lua and
bench/lib/memory_search.lua draw keel's requests (the vocabulary of bench/lib/memory_vocab.py, Zipf-weighted
words with exponent 1), written as CSV for psql's \\copy:
  pg_data.py rows VOCAB N SEED     k, content, metadata, tags: a memory as keel stores one of memory_insert.lua's
                                   bodies (100-200 bytes of words; 1 or 2 tags as a JSON array; metadata
                                   {"source","seq","thread"}, serialized as keel serializes it)
  pg_data.py queries VOCAB N SEED  k, q: the websearch_to_tsquery text keel builds from memory_search.lua's
                                   query (1-3 words drawn uniformly, each quoted, joined by " or ")
"""
import bisect
import csv
import itertools
import json
import random
import sys

TAGS = ["work", "home", "idea", "todo", "travel", "health", "family", "reading", "project", "meeting"]
SOURCES = ["chat", "note", "email", "import"]


def main():
    kind, vocab_path, n, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with open(vocab_path) as f:
        words = [w.strip() for w in f if w.strip()]
    rng = random.Random(seed)
    out = csv.writer(sys.stdout, lineterminator="\n")
    if kind == "rows":
        cdf = list(itertools.accumulate(1 / r for r in range(1, len(words) + 1)))

        def pick():
            return words[min(bisect.bisect_left(cdf, rng.random() * cdf[-1]), len(words) - 1)]

        for k in range(1, n + 1):
            target, text, length = rng.randint(100, 200), [], -1
            while length < target:  # memory_common.lua's text_of_bytes
                text.append(pick())
                length += 1 + len(text[-1])
            tags = [rng.choice(TAGS)]
            if rng.random() < 0.5:
                t2 = rng.choice(TAGS)
                if t2 != tags[0]:
                    tags.append(t2)
            metadata = {"source": rng.choice(SOURCES), "seq": k, "thread": k % 2}
            out.writerow([k, " ".join(text), json.dumps(metadata, separators=(",", ":")),
                          json.dumps(tags, separators=(",", ":"))])
    elif kind == "queries":
        for k in range(1, n + 1):
            terms = []
            for _ in range(rng.randint(1, 3)):
                w = rng.choice(words)
                if w not in terms:  # keel drops repeated words
                    terms.append(w)
            out.writerow([k, " or ".join(f'"{t}"' for t in terms)])
    else:
        sys.exit(f"unknown kind {kind}")


main()
