"""A small synthetic PRISM: ``survey.jsonl`` and ``utterances.jsonl`` in PRISM's schema.

Every field of PRISM's codebook is written, with invented values and texts (nothing comes from
the real data), so that :func:`disagree.data.prism.load_prism`, the PRISM notebook and tests run
without a download. Conversations follow PRISM's design: four LLMs drawn at random answer the
opening prompt, the participant's top-scored LLM answers each later prompt twice, and every
response is scored 1-100 by the participant who wrote the prompt.

The scores have a known truth: a quality per LLM, a gender-by-LLM deviation (women and men
prefer different LLMs), an age effect and a participant effect, on a latent logistic scale
(``score = clip(round(50 + 15 * latent), 1, 100)``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from disagree._io import write_atomic

#: LLMs (PRISM's ``model_name`` and ``model_provider``) and their latent quality.
MODELS = {"gpt-4": ("openai", 0.6), "claude-2": ("anthropic", 0.4),
          "command": ("cohere", 0.0), "models/chat-bison-001": ("google", -0.1),
          "meta-llama/Llama-2-7b-chat-hf": ("huggingface_api", -0.3),
          "HuggingFaceH4/zephyr-7b-beta": ("huggingface_api", -0.6)}
#: Extra preference of women (added) and men (subtracted) per LLM; the others get 0.
GENDER_DEVIATION = {"claude-2": 0.8, "gpt-4": -0.6, "HuggingFaceH4/zephyr-7b-beta": 0.4}
AGES = {"18-24 years old": 0.0, "25-34 years old": 0.1, "35-44 years old": 0.3,
        "45-54 years old": 0.5, "55-64 years old": 0.6, "65+ years old": 0.8}
_USECASES = ("homework_assistance", "research", "source_suggestions", "professional_work",
             "creative_writing", "casual_conversation", "personal_recommendations",
             "daily_productivity", "technical_or_programming_help", "travel_guidance",
             "lifestyle_and_hobbies", "medical_guidance", "financial_guidance", "games",
             "historical_or_news_insight", "relationship_advice", "language_learning")
_PREFS = ("values", "creativity", "fluency", "factuality", "diversity", "safety",
          "personalisation", "helpfulness")
_COUNTRIES = (("United Kingdom", "GBR", "Northern Europe", "UK"),
              ("United States", "USA", "Northern America", "US"),
              ("Mexico", "MEX", "Latin America and the Caribbean",
               "Latin America and the Caribbean"),
              ("South Africa", "ZAF", "Sub-Saharan Africa", "Africa"))
_ETHNICITY = (("White", "White", "White"), ("Black", "Black / African", "Black"),
              ("Latina", "Hispanic / Latino", "Hispanic"), ("Asian", "Asian", "Asian"))
_RELIGION = (("None", "Non-religious", "No Affiliation"), ("Christian", "Christian",
                                                             "Christian"),
             ("Jewish", "Jewish", "Jewish"), ("Muslim", "Muslim", "Muslim"))
_TYPES = ("unguided", "values guided", "controversy guided")
_TOPICS = ("saving money", "raising children", "climate policy", "learning a language",
           "religion in schools", "working from home", "eating meat", "free speech online")
_ADVICE = ("weigh both sides", "start small", "ask an expert", "it depends")
_OPENERS = ("What do you think about {}?", "How should I approach {}?",
            "Give me advice on {}.", "Is there a right answer on {}?")


def _survey_row(i: int, rng: np.random.Generator, gender: str, age: str,
                n_conversations: int) -> dict:
    c = _COUNTRIES[rng.integers(len(_COUNTRIES))]
    e = _ETHNICITY[rng.integers(len(_ETHNICITY))]
    r = _RELIGION[rng.integers(len(_RELIGION))]
    uses = {u: int(rng.random() < 0.4) for u in _USECASES} | {"other": 0, "other_text": None}
    prefs = {p: int(rng.integers(0, 101)) for p in _PREFS} | {"other": None,
                                                             "other_text": None}
    order_u = rng.permutation(len(_USECASES)) + 1
    order_p = rng.permutation(len(_PREFS)) + 1
    minutes = round(float(rng.uniform(10, 40)), 1)
    return {
        "user_id": f"user{i}", "survey_only": n_conversations == 0,
        "num_completed_conversations": n_conversations,
        "consent": "Yes, I consent to take part",
        "consent_age": "I certify that I am 18 years of age or over",
        "lm_familiarity": ("Somewhat familiar", "Very familiar")[int(rng.integers(2))],
        "lm_indirect_use": "Yes", "lm_direct_use": "Yes",
        "lm_frequency_use": ("Every week", "Once per month")[int(rng.integers(2))],
        "self_description": f"Participant {i}: I value honesty and my family.",
        "system_string": "Be polite, accurate and brief.",
        "age": age, "gender": gender,
        "employment_status": ("Working full-time", "Student")[int(rng.integers(2))],
        "education": ("University Bachelors Degree",
                      "Completed Secondary School")[int(rng.integers(2))],
        "marital_status": ("Never been married", "Married")[int(rng.integers(2))],
        "english_proficiency": ("Native speaker", "Fluent")[int(rng.integers(2))],
        "study_id": f"study{i % 3}", "study_locale": c[3].lower(),
        "religion": {"self_described": r[0], "categorised": r[1], "simplified": r[2]},
        "ethnicity": {"self_described": e[0], "categorised": e[1], "simplified": e[2]},
        "location": {"birth_country": c[0], "birth_countryISO": c[1],
                     "birth_subregion": c[2], "reside_country": c[0],
                     "reside_countryISO": c[1], "reside_subregion": c[2],
                     "same_birth_reside_country": "Yes", "special_region": c[3]},
        "lm_usecases": uses, "stated_prefs": prefs,
        "order_lm_usecases": {u: int(o) for u, o in zip(_USECASES, order_u, strict=True)}
        | {"other": len(_USECASES) + 1},
        "order_stated_prefs": {p: int(o) for p, o in zip(_PREFS, order_p, strict=True)}
        | {"other": len(_PREFS) + 1},
        "generated_datetime": f"2023-11-{22 + i % 8} 12:00:00",
        "timing_duration_s": minutes * 60, "timing_duration_mins": minutes,
        "included_in_US_REP": c[1] == "USA", "included_in_UK_REP": c[1] == "GBR",
        "included_in_balanced_subset": True,
    }


def write_synthetic_prism(folder: str | os.PathLike[str], n_participants: int = 40,
                          conversations: int = 2, later_turns: int = 1, seed: int = 0,
                          ) -> dict:
    """Write a synthetic ``survey.jsonl`` and ``utterances.jsonl`` in PRISM's schema.

    Parameters
    ----------
    folder : path
        Created if needed; the two files are written atomically.
    n_participants : int
        Participants; every tenth (``user9``, ``user19``, ...) only answers the survey, as
        7% of PRISM's participants did.
    conversations, later_turns : int
        Conversations per participant, and turns after the opening one in each.
    seed : int
        Same seed, same bytes.

    Returns
    -------
    dict
        ``folder``, ``n_utterances`` and the truth: ``model_quality``, ``gender_deviation``
        (added for women, subtracted for men, on the latent scale) and ``age_effect``.
    """
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = list(MODELS)
    survey, utterances = [], []
    n_int = n_conv = 0
    for i in range(n_participants):
        gender = ("Female", "Male")[i % 2]
        age = list(AGES)[int(rng.integers(len(AGES)))]
        n_c = 0 if i % 10 == 9 else conversations
        survey.append(_survey_row(i, rng, gender, age, n_c))
        u = rng.normal(0.0, 0.4)
        sign = 1.0 if gender == "Female" else -1.0

        def score(model: str, gender_sign: float = sign, rater: float = u,
                  age_effect: float = AGES[age]) -> int:
            latent = (MODELS[model][1] + gender_sign * GENDER_DEVIATION.get(model, 0.0)
                      + age_effect + rater + rng.logistic(0.0, 0.6))
            return int(np.clip(round(50 + 15 * latent), 1, 100))

        for c in range(n_c):
            conv, ctype = f"c{n_conv}", _TYPES[c % len(_TYPES)]
            n_conv += 1
            topic = _TOPICS[int(rng.integers(len(_TOPICS)))]
            best = None
            for turn in range(later_turns + 1):
                interaction = f"int{n_int}"
                n_int += 1
                if turn == 0:
                    prompt = _OPENERS[int(rng.integers(len(_OPENERS)))].format(topic)
                    drawn = [names[j] for j in rng.choice(len(names), 4, replace=False)]
                else:
                    prompt = f"Tell me more about {topic}, point {turn}."
                    drawn = [best, best]
                scores = [score(m) for m in drawn]
                chosen = int(np.argmax(scores))
                for w, (model, s) in enumerate(zip(drawn, scores, strict=True)):
                    utterances.append({
                        "utterance_id": f"ut{len(utterances)}", "interaction_id": interaction,
                        "conversation_id": conv, "user_id": f"user{i}", "turn": turn,
                        "within_turn_id": w, "conversation_type": ctype,
                        "user_prompt": prompt,
                        "model_response": f"[{model}, take {w + 1}] On {topic}: "
                                          f"{_ADVICE[w]}.",
                        "model_name": model, "model_provider": MODELS[model][0],
                        "score": s, "if_chosen": w == chosen,
                        "included_in_balanced_subset": True})
                if turn == 0:
                    best = drawn[chosen]
    for name, rows in (("survey.jsonl", survey), ("utterances.jsonl", utterances)):
        text = "".join(json.dumps(r) + "\n" for r in rows)
        write_atomic(folder / name, lambda p, t=text: p.write_text(t, encoding="utf-8"))
    return {"folder": folder, "n_utterances": len(utterances),
            "model_quality": {m: q for m, (_, q) in MODELS.items()},
            "gender_deviation": dict(GENDER_DEVIATION), "age_effect": dict(AGES)}
