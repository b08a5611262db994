#!/usr/bin/env bash
# Scores a general-purpose bundle on every held-out set it is judged on: Tatoeba valid/test with
# the <general> tag and Multi30k val/test_2016_flickr with the <caption> tag, greedy and beam 5.
# Reports (report.json, report.md, hypotheses) go to docs/evaluation/<bundle name>/<set>/.
#
#   benchmarks/evaluate_general.sh models/general-de-en [threads]
set -euo pipefail
bundle=${1:?usage: $0 BUNDLE [THREADS]}
threads=${2:-1}
name=$(basename "$bundle")
src=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['data']['src_lang'])" "$bundle/config.json")
tgt=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['data']['tgt_lang'])" "$bundle/config.json")
nmt=${NMT:-nmt}
for spec in "tatoeba valid general" "tatoeba test general" "multi30k val caption" "multi30k test_2016_flickr caption"; do
  set -- $spec
  corpus=$1 split=$2 domain=$3
  out=docs/evaluation/$name/$corpus-$split
  "$nmt" evaluate --model "$bundle" --src "data/$corpus/$split.$src.gz" --ref "data/$corpus/$split.$tgt.gz" \
    --beam 1 5 --domain "$domain" --threads "$threads" --quiet --report "$out"
done
