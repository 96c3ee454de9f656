"""Create: inputs and their checks, providers and options, one Submit, then live progress.
The Batch tab does the same for many takes × characters (components/batch_view.py)."""

import streamlit as st

from components.batch_view import batch_tab, create_tabs
from components.common import get_studio, human_mb, sentences, upload_limit_mb
from components.draft import keep_draft, resume_draft
from components.identity import viewer
from components.input_routes import route_blockers
from components.media_input import media_input
from components.provider_picker import cost_summary, options_panel, provider_picker, spend_label
from components.providers import capabilities, info_by_id, provider_name
from components.scroll import scroll_into_view
from components.submit import submit_button
from components.task_card import task_cards
from services.models import MediaRole, TaskInputs, TaskOptions

st.title("Create")
st.caption(
    "Move a performance from a driving video onto a character. Files are checked before "
    f"anything is sent. Uploads up to {human_mb(upload_limit_mb())} per file."
)

one_take, batch = create_tabs()
if batch.open:
    with batch, sentences("preparing the batch"):
        batch_tab()
    st.stop()

with one_take, sentences("preparing the page"):
    remembered = resume_draft()
    inputs_col, setup_col = st.columns([3, 2], gap="large")

    with setup_col:
        st.subheader("Providers")
        chosen = provider_picker(remembered)

    with inputs_col:
        st.subheader("Inputs")
        video = media_input(
            MediaRole.DRIVING_VIDEO,
            title="Driving video",
            hint="The performance: one person facing the camera, steady framing, 3–30 s.",
            provider_ids=chosen,
        )
        image = media_input(
            MediaRole.CHARACTER_IMAGE,
            title="Character image",
            hint="Who should perform: a clear, front-facing face.",
            provider_ids=chosen,
        )
        wants_video = any(
            c is not None and c.accepts_character_video for c in map(capabilities, chosen)
        )
        character_video = None
        if wants_video:
            has_one = st.session_state.get(f"input_{MediaRole.CHARACTER_VIDEO.value}")
            with st.expander(
                "Character video (optional) — a clip of the character instead of an image",
                expanded=bool(has_one),
                icon=":material/person_play:",
            ):
                character_video = media_input(
                    MediaRole.CHARACTER_VIDEO,
                    title="Character video",
                    hint="Used by the providers that take one; the others use the image.",
                    provider_ids=[
                        p for p in chosen if (c := capabilities(p)) and c.accepts_character_video
                    ],
                    optional=True,
                )

    blockers: list[str] = []
    if not chosen:
        blockers.append("Choose at least one provider.")
    if video.choice is None:
        blockers.append("Add a driving video.")
    needs_image = [p for p in chosen if (c := capabilities(p)) and c.requires_image]
    has_character_video = character_video is not None and character_video.choice is not None
    if image.choice is None and (needs_image or not has_character_video):
        names = ", ".join(provider_name(p) for p in needs_image)
        blockers.append(f"Add a character image{f' ({names} needs one)' if names else ''}.")
    if has_character_video:
        # One run sends the same inputs everywhere; a provider that cannot take a character
        # video would refuse the whole task after the others were already paid for.
        refuse = [p for p in chosen if (c := capabilities(p)) and not c.accepts_character_video]
        if refuse:
            names = ", ".join(provider_name(p) for p in refuse)
            blockers.append(f"{names} cannot take a character video: remove it or untick {names}.")
    if any(r is not None and r.blocked for r in (video, image, character_video)):
        blockers.append("Fix the inputs marked “Blocks” first.")

    task_inputs = None
    if video.choice is not None:
        task_inputs = TaskInputs(
            video=video.choice.value,
            image=image.choice.value if image.choice else None,
            character_video=(
                character_video.choice.value
                if character_video is not None and character_video.choice
                else None
            ),
        )

    with setup_col:
        options = TaskOptions()
        if chosen:
            st.subheader("Options")
            options = options_panel(chosen)
        estimates: dict[str, float | None] = {}
        if chosen and video.choice is not None:
            st.subheader("Estimated cost")
            studio = get_studio()
            local = TaskInputs(video=video.choice.path)
            estimates = {
                p: studio.estimate_cost(c, local)
                for p in chosen
                if (c := capabilities(p)) is not None
            }
            cost_summary(estimates)
        keep_draft(chosen)
        blockers += route_blockers(
            [i for p in chosen if (i := info_by_id().get(p))], task_inputs, get_studio().settings
        )
        run_id = submit_button(
            chosen, task_inputs, options, blockers, spend_label(estimates), planned=estimates
        )
        if run_id:
            st.query_params["run"] = run_id
            st.session_state["_scroll_to_run"] = run_id
            st.rerun()

    shown_run = st.query_params.get("run")
    if shown_run:
        run = get_studio().store.get_run(shown_run)
        mine = run is not None and viewer().may_see(run.owner)
        tasks = get_studio().store.run_tasks(shown_run) if mine else []
        if tasks:
            st.divider()
            with st.container(key="this_run"):
                head, link = st.columns([3, 1], vertical_alignment="center")
                head.subheader("This run")
                if len({t.provider for t in tasks}) > 1:
                    link.page_link(
                        "pages/compare.py",
                        label="Compare side by side",
                        icon=":material/compare:",
                        query_params={"run": shown_run},
                    )
                task_cards(tasks, key="run", columns=max(2, min(3, len(tasks))))
                # Once, right after Submit: the cards are below the fold at laptop sizes.
                if st.session_state.get("_scroll_to_run") == shown_run:
                    del st.session_state["_scroll_to_run"]
                    scroll_into_view("this_run", token=shown_run)
