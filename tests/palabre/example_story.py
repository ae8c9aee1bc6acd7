"""The example consultation run whole with 60 people, as the issue's coordinator tried it.

`examples/ess-plan.toml` (seven actor categories, four questionnaires) with its timetable moved
to the test's clock: 72 observations (five out of scope, six duplicates), 7 findings (one
revised), a meeting on paper, 28 proposals (three merged, ten shortlisted), 41 ballots in which
the categories disagree, and every questionnaire answered. Everything goes through the product's
own functions; the random choices are seeded, so the figures are the same every run.
"""

from __future__ import annotations

import random
import tomllib
from datetime import timedelta
from pathlib import Path

from sqlmodel.ext.asyncio.session import AsyncSession

from consultation import actions, clock, definition, findings, meetings, observations
from consultation import questionnaires as questionnaires_module
from consultation.clock import ManualClock
from models import Channel, Consultation, Participant
from tests.consultation.evaluation_story import move_on
from tests.factories import make_coordinator, make_participant

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ess-plan.toml"
TG = Channel.TELEGRAM
PEOPLE = {
    "association": 16,
    "cooperative": 10,
    "mutual": 5,
    "network": 6,
    "elected": 6,
    "agency": 7,
    "citizen": 10,
}
THEMES = [
    "Les petites coopératives n'ont pas d'accompagnement adapté à leur taille",
    "Le foncier en centre-ville est hors de prix pour les structures de l'ESS",
    "Les marchés publics restent difficiles d'accès pour les associations",
    "Les jeunes connaissent mal l'économie sociale et solidaire",
    "Les réseaux de l'ESS se parlent peu entre eux",
    "Les financements sont trop courts pour des projets de trois ans",
    "Les quartiers prioritaires manquent de lieux ressources",
    "Les mutuelles et les associations travaillent chacune de leur côté",
    "Les élus connaissent mal les besoins des entreprises d'insertion",
    "Les démarches administratives découragent les bénévoles",
    "Le transport limite l'accès aux emplois de l'insertion en périphérie",
    "La commande publique ne valorise pas l'utilité sociale",
]
DETAILS = [
    "on le voit chaque semaine",
    "surtout pour les structures de moins de cinq salariés",
    "plusieurs adhérents nous l'ont dit",
    "la situation s'est aggravée depuis deux ans",
    "c'est le premier frein cité dans notre réseau",
    "en particulier hors de la ville-centre",
]
FINDINGS = [
    ("Les petites structures de l'ESS manquent d'un accompagnement adapté à leur taille.", [0, 9]),
    ("Le coût du foncier empêche les structures de l'ESS de s'installer en ville.", [1, 6]),
    ("La commande publique reste peu accessible aux acteurs de l'ESS.", [2, 11]),
    ("L'ESS est mal connue des jeunes et des habitants.", [3]),
    ("Les acteurs de l'ESS coopèrent trop peu entre eux et avec la collectivité.", [4, 7, 8]),
    ("Les financements sont trop courts et trop complexes à obtenir.", [5, 9]),
    ("L'éloignement géographique freine l'accès aux emplois de l'ESS.", [10]),
]
REVISED_F4 = "L'ESS est mal connue des jeunes, des habitants et des élus."
# Each category's chance of confirming each finding (F1..F7).
CONFIRM = {
    "association": [0.9, 0.8, 0.85, 0.7, 0.3, 0.9, 0.6],
    "cooperative": [0.95, 0.85, 0.8, 0.6, 0.75, 0.85, 0.25],
    "mutual": [0.8, 0.4, 0.6, 0.7, 0.5, 0.8, 0.5],
    "network": [0.9, 0.4, 0.85, 0.8, 0.3, 0.85, 0.6],
    "elected": [0.85, 0.2, 0.3, 0.8, 0.7, 0.5, 0.5],
    "agency": [0.8, 0.3, 0.25, 0.75, 0.6, 0.4, 0.55],
    "citizen": [0.75, 0.85, 0.7, 0.3, 0.7, 0.7, 0.8],
}
REASONS = [
    "Trop général",
    "Trop général",
    "Trop général",
    "Ce n'est pas propre à l'ESS.",
    "Les chiffres manquent pour l'affirmer.",
    "La Métropole agit déjà sur ce point.",
    "Le vrai frein est ailleurs : la trésorerie.",
]
PROPOSALS = [
    "Un guichet unique de l'ESS à la Métropole",
    "Une foncière solidaire pour loger les structures",
    "Des clauses sociales dans tous les marchés de plus de 90 000 euros",
    "Un fonds d'amorçage pour les coopératives",
    "Un mois de l'ESS dans les collèges et lycées",
    "Des conventions pluriannuelles de trois ans",
    "Un annuaire partagé des acteurs de l'ESS",
    "Des locaux partagés dans chaque quartier prioritaire",
    "Un pôle territorial de coopération par bassin de vie",
    "Une formation des élus et des agents à l'ESS",
    "Un service de navettes vers les zones d'activité",
    "Un budget participatif réservé aux projets d'ESS",
    "Un dossier de subvention simplifié et commun",
    "Des prêts d'honneur pour les créateurs de SCOP",
    "Un réseau d'ambassadeurs de l'ESS dans les quartiers",
    "Un baromètre annuel de l'ESS métropolitaine",
    "Des achats groupés entre structures",
    "Un accompagnement à la commande publique",
    "Une plateforme de mise à disposition de salles",
    "Un label métropolitain de l'utilité sociale",
    "Un appel à projets annuel dédié aux jeunes",
    "Des permanences de l'ESS en mairie de quartier",
    "Une charte de coopération entre la Métropole et les réseaux",
    "Un tiers-lieu de l'ESS en centre-ville",
    "Une aide au recrutement dans les petites associations",
    "Des stages en ESS pour les étudiants",
    "Un guichet unique pour toute l'économie sociale",
    "Une foncière solidaire métropolitaine",
]
MERGES = [("A27", "A1"), ("A28", "A2"), ("A17", "A18")]
SHORTLIST = ["A1", "A2", "A3", "A4", "A5", "A6", "A8", "A9", "A10", "A13"]
ANSWERS = {
    "A1": ["F1", "F6"], "A2": ["F2"], "A3": ["F3"], "A4": ["F1"], "A5": ["F4"],
    "A6": ["F6"], "A8": ["F2", "F7"], "A9": ["F5"], "A10": ["F4", "F5"], "A13": ["F6"],
}  # fmt: skip
# Each category's preferred order of the shortlist: ballots follow it, shuffled a little.
TASTES = {
    "association": ["A6", "A1", "A13", "A8", "A2", "A9", "A5", "A3", "A10", "A4"],
    "cooperative": ["A4", "A2", "A1", "A3", "A9", "A6", "A13", "A8", "A10", "A5"],
    "mutual": ["A9", "A1", "A6", "A13", "A3", "A2", "A10", "A4", "A5", "A8"],
    "network": ["A9", "A10", "A1", "A6", "A3", "A13", "A2", "A4", "A5", "A8"],
    "elected": ["A1", "A5", "A10", "A3", "A9", "A6", "A13", "A2", "A4", "A8"],
    "agency": ["A13", "A1", "A3", "A10", "A6", "A9", "A5", "A2", "A4", "A8"],
    "citizen": ["A2", "A8", "A5", "A1", "A6", "A9", "A13", "A3", "A10", "A4"],
}
WISHES = [
    "Des réunions en soirée pour ceux qui travaillent.",
    "Plus de temps pour relire les constats.",
    "Des comptes rendus plus courts.",
    "Associer davantage les habitants des quartiers.",
    "Le lien avec le budget de la Métropole.",
    "La place des bénévoles dans l'ESS.",
]


async def the_example(session: AsyncSession, moving: ManualClock) -> Consultation:
    """The example consultation, run to its evaluation phase with 60 participants."""
    rng = random.Random(2027)
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    start = clock.now()
    for index, phase in enumerate(data["phases"]):
        phase["opens"] = start + timedelta(days=14 * index)
        phase["closes"] = start + timedelta(days=14 * (index + 1))
        phase["min_days"] = 1
    consultation, _ = await definition.apply(
        session=session, spec=definition.ConsultationSpec.model_validate(data)
    )
    await session.flush()
    coordinator = await make_coordinator(session, consultation)
    people: list[Participant] = []
    for category, count in PEOPLE.items():
        for n in range(count):
            people.append(
                await make_participant(
                    session, consultation, name=f"{category} {n + 1}", category=category
                )
            )
    await move_on(session, consultation, "observe", moving)

    # 72 observations from 48 people; five out of scope, six duplicates, the rest in scope.
    authors = rng.sample(people, 48)
    made = []
    for n in range(72):
        theme = n % len(THEMES)
        text = f"{THEMES[theme]} : {DETAILS[(n // len(THEMES)) % len(DETAILS)]}."
        person = authors[n % len(authors)]
        made.append(
            (
                theme,
                await observations.submit_observation(
                    session=session, participant=person, text=text, channel=TG
                ),
            )
        )
        if n % 20 == 19:
            moving.advance(days=1)
    out = {made[5][1].id: "Demande de subvention d'une structure en particulier"}
    out |= {made[k][1].id: "Compétence de la Région" for k in (17, 29, 41)}
    out |= {made[53][1].id: "Sans lien avec l'ESS"}
    for observation_id, reason in out.items():
        await observations.decide_scope(
            session=session, observation_id=observation_id, by=coordinator, in_scope=False,
            reason=reason,
        )  # fmt: skip
    for k in (60, 61, 62, 63, 64, 65):
        await observations.merge_observation(
            session=session, observation_id=made[k][1].id, into_id=made[k - 12][1].id,
            by=coordinator,
        )  # fmt: skip
    for _, observation in made:
        if observation.id not in out and observation.scope_status == "pending":
            await observations.decide_scope(
                session=session, observation_id=observation.id, by=coordinator, in_scope=True
            )

    await move_on(session, consultation, "review", moving)
    await _answer(session, consultation, people, rng, "after-observe", 34)
    for text, themes in FINDINGS:
        cited = [o.id for theme, o in made[:60] if theme in themes and o.id not in out]
        await findings.draft_finding(
            session=session, consultation_id=consultation.id, by=coordinator, text=text,
            observation_ids=cited,
        )  # fmt: skip
    await findings.publish_findings(
        session=session, consultation_id=consultation.id, by=coordinator
    )

    async def stances(round_people: list[Participant], codes: list[int]) -> None:
        for person in round_people:
            for index in codes:
                if rng.random() < 0.25:
                    continue
                confirm = rng.random() < CONFIRM[person.category][index]
                if confirm:
                    choice, reason = "confirm", None
                elif rng.random() < 0.2:
                    choice, reason = "abstain", None
                else:
                    choice, reason = "contest", rng.choice(REASONS)
                await findings.record_stance(
                    session=session, participant=person, code=f"F{index + 1}", choice=choice,
                    reason=reason, channel=TG,
                )  # fmt: skip

    active = rng.sample(people, 52)
    await stances(active, list(range(7)))
    moving.advance(days=3)
    f4 = await findings.get_finding(session=session, consultation_id=consultation.id, code="F4")
    await findings.edit_finding(session=session, finding_id=f4.id, by=coordinator, text=REVISED_F4)
    await stances(active[:30], [3])
    # A meeting at the Maison de l'ESS: the room's show of hands on three findings.
    rows = []
    for code, split in (("F2", (9, 6)), ("F4", (13, 2)), ("F7", (8, 6))):
        for n in range(sum(split)):
            category = "citizen" if n % 3 else "association"
            confirm = n < split[0]
            rows.append(
                meetings.MeetingRow(
                    line=len(rows) + 2, kind="stance", category=category, finding=code,
                    choice="confirm" if confirm else "contest",
                    text="" if confirm else "Trop général",
                )
            )  # fmt: skip
    await meetings.import_meeting(
        session=session,
        consultation_id=consultation.id,
        meeting=meetings.MeetingSpec(
            held_on=clock.now().date(),
            place="Maison de l'ESS, Toulouse",
            attendance={"association": 6, "citizen": 11, "elected": 2},
        ),
        rows=rows,
        by=None,
        actor_label="test",
    )

    await move_on(session, consultation, "propose", moving)
    await _answer(session, consultation, people, rng, "after-review", 29)
    proposers = rng.sample(people, 24)
    for n, text in enumerate(PROPOSALS):
        await actions.propose_action(
            session=session, participant=proposers[n % len(proposers)], text=text + ".",
            channel=TG,
        )  # fmt: skip
    for code, into in MERGES:
        await actions.merge_action(
            session=session, consultation_id=consultation.id, code=code, into_code=into,
            by=coordinator,
        )  # fmt: skip
    for code, answers in ANSWERS.items():
        await actions.link_findings(
            session=session, consultation_id=consultation.id, code=code, finding_codes=answers,
            by=coordinator,
        )  # fmt: skip
    await actions.shortlist(
        session=session, consultation_id=consultation.id, by=coordinator, codes=SHORTLIST
    )

    await move_on(session, consultation, "rank", moving)
    for person in rng.sample(people, 41):
        taste = list(TASTES[person.category])
        for _ in range(2):
            i = rng.randrange(len(taste) - 1)
            taste[i], taste[i + 1] = taste[i + 1], taste[i]
        await actions.cast_ballot(session=session, participant=person, codes=taste[:5], channel=TG)
    await move_on(session, consultation, "evaluate", moving)
    await _answer(session, consultation, people, rng, "after-rank", 31)
    await _answer(session, consultation, people, rng, "final", 38)
    return consultation


async def _answer(session, consultation, people, rng, key, count) -> None:
    """`count` people answer questionnaire `key`: categories lean differently on the scales."""
    questionnaire = await questionnaires_module.get_questionnaire(
        session=session, consultation_id=consultation.id, key=key
    )
    if questionnaire.status == "scheduled":
        await questionnaires_module.open_questionnaire(
            session=session, questionnaire_id=questionnaire.id
        )
    questions = await questionnaires_module.questions_of(
        session=session, questionnaire_id=questionnaire.id
    )
    lean = {"elected": 1, "agency": 1, "association": -1, "citizen": -1}
    for person in rng.sample(people, count):
        for question in questions:
            where = {"questionnaire_key": key, "position": question.position, "channel": TG}
            if question.kind == "likert":
                value = min(5, max(1, round(rng.gauss(3.3 + lean.get(person.category, 0), 0.9))))
            elif question.kind == "choice":
                value = rng.choice([1, 2, 2, 3] if len(question.choices) == 3 else [1, 2])
            elif rng.random() < 0.35:
                value = rng.choice(WISHES)
            else:
                await questionnaires_module.skip_question(
                    session=session, participant=person, **where
                )
                continue
            await questionnaires_module.answer_question(
                session=session, participant=person, value=value, **where
            )
