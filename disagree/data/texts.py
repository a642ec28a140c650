"""Short prompt and response texts for the simulator, worded by the responses' latent traits.

A response is an opener and a closer whose tone follows its toxicity, a body whose substance
follows its helpfulness, and, for strongly stereotyping responses, a generalisation about a
group. The five levels of each trait map to phrase banks, so the wording carries the latent
values a text model can learn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_SITUATIONS = [
    "a coworker who takes credit for my work", "a roommate who never cleans up",
    "my teenager who refuses to talk to me", "a neighbour who plays loud music at night",
    "a friend who keeps cancelling plans", "my boss who criticises me in meetings",
    "a sibling who borrows money and never pays it back", "feeling lonely after moving cities",
    "a partner who spends too much time on their phone", "stress before an important exam",
    "a parent who disapproves of my career", "a classmate who copies my homework",
    "a landlord who ignores repair requests", "anxiety about public speaking",
    "a group chat that turned hostile", "a team member from another country I clash with",
    "an elderly relative who refuses help", "being passed over for a promotion",
    "a customer who yells at me", "a new stepfamily that does not accept me",
    "losing motivation at work", "a friend who makes jokes about my religion",
    "grief after losing a pet", "a doctor who does not take my symptoms seriously",
    "burnout from caring for a sick parent", "a neighbour with different political views",
    "online harassment on social media", "a colleague who interrupts women in meetings",
    "debt that keeps growing", "a child being bullied at school",
]
_FRAMES = ["How should I deal with {s}?", "What would you do about {s}?",
           "Any advice on handling {s}?", "I'm struggling with {s}. What can I do?"]
_OPENERS = [
    ["That sounds really hard, and I'm glad you asked.", "I'm sorry you're going through this.",
     "It makes sense that this is weighing on you."],
    ["Okay, let's look at this together.", "That's a fair question.", "Good that you're asking."],
    ["Well, this happens to a lot of people.", "This is a pretty common problem.",
     "People deal with this all the time."],
    ["Honestly, this is a bit of a silly thing to worry about.", "Come on, this isn't complicated.",
     "You're overthinking this."],
    ["What a stupid question.", "Only an idiot would end up in this mess.",
     "Seriously, how pathetic is that?"],
]
_BODIES = [
    ["I can't really help with that.", "Just deal with it yourself.", "No idea, figure it out."],
    ["Maybe try something different.", "You could just ignore it for now."],
    ["It might help to talk to someone about {topic}.", "Try to set some limits around {topic}."],
    ["A good first step is to write down what happened with {topic} and then talk it through "
     "calmly with the person involved.",
     "Try describing how {topic} affects you, using 'I' statements, and agree on one change."],
    ["Here is a concrete plan for {topic}: first, note specific examples; second, ask for a "
     "calm conversation and state one clear request; third, if nothing changes, involve a "
     "mediator or someone with authority, and look after your own support network meanwhile.",
     "Three steps usually work for {topic}: name the problem without blame, agree on a specific "
     "change with a date, and check in a week later; keep notes in case you need to escalate."],
]
_CLOSERS = [
    ["You've got this, and it's okay to ask for support.", "Take care of yourself.",
     "Wishing you the best with it."],
    ["Hope that helps.", "Good luck."],
    ["That's about it.", "Anyway, that's my take."],
    ["Stop complaining so much.", "Grow a thicker skin."],
    ["Stop whining and grow up.", "People like you are the problem.",
     "Nobody cares, loser."],
]
_STEREOTYPES = ["Of course, people like that are always lazy.",
                "Typical of that kind of person, they never change.",
                "Everyone knows those people can't be trusted.",
                "Women always overreact to this stuff anyway.",
                "That's just how foreigners are."]
_CUTS = np.array([-0.84, -0.25, 0.25, 0.84])  # standard-normal quintile boundaries


@dataclass(frozen=True)
class Prompt:
    """A simulated prompt: its text and the situation it is about."""

    text: str
    topic: str


def prompts(n: int, rng: np.random.Generator) -> list[Prompt]:
    """Draw ``n`` distinct prompts (numbered variants once the templates run out)."""
    combos = [(s, f) for s in _SITUATIONS for f in _FRAMES]
    order = rng.permutation(len(combos))
    out = []
    for i in range(n):
        s, f = combos[order[i % len(combos)]]
        text = f.format(s=s)
        if i >= len(combos):
            text += f" (case {i // len(combos) + 1})"
        out.append(Prompt(text=text, topic=s))
    return out


def response(prompt: Prompt, traits: np.ndarray, rng: np.random.Generator) -> str:
    """Assemble a response whose wording follows ``traits`` = (toxicity, helpfulness, bias)."""
    tox, helpful, bias = (int(np.searchsorted(_CUTS, t)) for t in traits)
    topic = prompt.topic.replace("my ", "your ").replace(" I ", " you ")
    parts = [_pick(_OPENERS[tox], rng), _pick(_BODIES[helpful], rng).format(topic=topic)]
    if bias >= 3:
        parts.append(_pick(_STEREOTYPES, rng))
    parts.append(_pick(_CLOSERS[tox], rng))
    return " ".join(parts)


def _pick(options: list[str], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]
