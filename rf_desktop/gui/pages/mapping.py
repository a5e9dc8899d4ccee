"""The Mapping page: which Referral Factory value goes to which Pipedrive field, the lead/deal title,
default values for new leads and deals, the person referring, duplicates, and a dry-run preview.

The Pipedrive side comes from the cached schema (`controller.schema()`); Refresh fetches it again, so a
field created in Pipedrive a minute ago can be picked. The first-run dialog reuses `MappingGrid` (only the
required rows) and `CreateFieldsBox` with its own draft.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QDoubleValidator, QShowEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QRadioButton,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from rf_desktop.core import mapping
from rf_desktop.core.config import (
    Settings,
    available_sources,
    is_referrer_source,
    source_label,
)
from rf_desktop.core.mapping_setup import (
    OPTIONAL_FIELDS,
    REFERRAL_CODE_FIELD,
    REQUIRED_SOURCES,
    auto_map_referral_fields,
    campaign_field_labels,
    preselect_referral_code,
    referral_code_field,
    sample_referral,
    target_items,
    target_name,
    with_source_mapped,
)
from rf_desktop.core.schema import FieldDef, PipedriveSchema
from rf_desktop.core.store import Referral
from rf_desktop.gui.controller import AppController
from rf_desktop.gui.widgets.form_helpers import (
    ERROR,
    SUCCESS,
    WARNING,
    BusyIndicator,
    IssueLabel,
    MessagePanel,
    add_to,
    buddy_label,
    hint_label,
    issue_colour,
    select_data,
    set_combo_items,
    wrapped_label,
)
from rf_desktop.gui.widgets.settings_draft import (
    PROBLEMS,
    DraftPage,
    OwnedTasks,
    SettingsDraft,
    problem_text,
    refresh_schema,
)

# who owns new leads and deals unless the owner picks someone: Pipedrive's default, the token's owner
CONNECTED_USER = "You (the Pipedrive user you connected)"
NOTHING_ABOUT_REFERRER = (
    "Nothing about the person referring is mapped yet: choose a Pipedrive field for one of the fields "
    "below, and it is attached to each lead or deal."
)
TITLE_SUGGESTIONS = (
    "{campaign_name}: {first_name}",
    "{campaign_name}",
    "{source}",
    "{first_name} ({campaign_name})",
    "Referral from {referrer.first_name}: {first_name}",
)



# --- the grid ---------------------------------------------------------------------------------------------


def _bold_label(text: str) -> QLabel:
    label = QLabel(text)
    font = label.font()
    font.setBold(True)
    label.setFont(font)
    return label


class _MappingRow:
    def __init__(self, source: str, label: str, required: bool) -> None:
        self.source = source
        self.label = _bold_label(f"{label} *") if required else QLabel(label)
        self.combo = QComboBox()
        self.combo.setAccessibleName(f"Pipedrive field for {label}")
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(16)
        self.label.setBuddy(self.combo)
        if required:
            self.label.setToolTip("Required")
        self.issue = IssueLabel()

    def delete(self) -> None:
        for widget in (self.label, self.combo, self.issue):
            widget.deleteLater()


class MappingGrid(QWidget):
    """Referral Factory fields on the left, a dropdown of Pipedrive fields on the right.

    `required_only` shows just the rows Pipedrive needs (First Name, Email, Referral Code), for the
    first-run dialog."""

    def __init__(
        self,
        controller: AppController,
        draft: SettingsDraft,
        *,
        required_only: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.draft = draft
        self.required_only = required_only
        self.rows: dict[str, _MappingRow] = {}
        self._sources: list[tuple[str, str]] = []
        self._loading = False
        self._fetching = False
        self.required_issue = IssueLabel("mappings", exact=True)
        self.attach_referrer = QCheckBox("&Attach information about the person referring")
        self.attach_referrer.toggled.connect(self._attach_toggled)
        self.attach_hint = hint_label(NOTHING_ABOUT_REFERRER)
        self._grid_host = QWidget()
        self._grid = QGridLayout(self._grid_host)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.required_issue)
        column.addWidget(self._grid_host)
        self._heading = _bold_label("Referral Factory field")
        self._target_heading = _bold_label("Pipedrive field")
        self._referrer_heading = _bold_label("Person referring")
        # bound methods, not lambdas: Qt disconnects them when this widget goes, the draft may live on
        draft.changed.connect(self._sync)
        draft.issuesChanged.connect(self._show_issues)
        controller.schemaChanged.connect(self._sync)
        self._rebuild()

    def set_loading(self, loading: bool) -> None:
        """Hold the dropdowns while the Pipedrive fields are being fetched."""
        self._fetching = loading
        self._load()

    def refresh_sources(self) -> None:
        """Take the campaign's form fields again (after a refresh)."""
        self._sync()

    def _wanted_sources(self) -> list[tuple[str, str]]:
        settings = self.draft.settings
        if self.required_only:
            return [(s, source_label(s)) for s in REQUIRED_SOURCES]
        sources = available_sources(
            campaign_field_labels(self.controller.account.cached_campaigns(), settings.referral_factory.campaign_ids)
        )
        known = {s for s, _label in sources}
        # a mapped form field of a campaign no longer chosen stays visible, so it can be removed
        extra = [(m.source, source_label(m.source)) for m in settings.mappings if m.source not in known]
        return sources + list(dict.fromkeys(extra))

    def _rebuild(self) -> None:
        """Lay the rows out again for a new list of sources, keeping the rows that stay (and the focus)."""
        self._sources = self._wanted_sources()
        while self._grid.count():
            self._grid.takeAt(0)
        wanted = {source for source, _label in self._sources}
        for source, row in self.rows.items():
            if source not in wanted:
                row.delete()
        old, self.rows = self.rows, {}
        self._grid.addWidget(self._heading, 0, 0)
        self._grid.addWidget(self._target_heading, 0, 1)
        line = 1
        referrer_started = False
        for source, label in self._sources:
            if is_referrer_source(source) and not referrer_started:
                referrer_started = True
                self._grid.addWidget(self._referrer_heading, line, 0, 1, 2)
                self._grid.addWidget(self.attach_referrer, line + 1, 0, 1, 2)
                self._grid.addWidget(self.attach_hint, line + 2, 0, 1, 2)
                line += 3
            row = old.get(source) or self._new_row(source, label)
            self._grid.addWidget(row.label, line, 0)
            self._grid.addWidget(row.combo, line, 1)
            self._grid.addWidget(row.issue, line + 1, 0, 1, 2)
            self.rows[source] = row
            line += 2
        self._referrer_heading.setVisible(referrer_started)
        self.attach_referrer.setVisible(referrer_started)
        self.attach_hint.setVisible(referrer_started)
        self._grid.setColumnStretch(1, 1)
        self._load()

    def _new_row(self, source: str, label: str) -> _MappingRow:
        row = _MappingRow(source, label, source in REQUIRED_SOURCES)
        row.combo.currentIndexChanged.connect(lambda _i: self._chosen(row))
        return row

    def _sync(self) -> None:
        """The sources or the Pipedrive fields may have changed: rebuild or refill."""
        if self._wanted_sources() != self._sources:
            self._rebuild()
        else:
            self._load()

    def _load(self) -> None:
        settings = self.draft.settings
        schema = self.draft.schema()
        self._loading = True
        # the box attaches what is mapped: with nothing mapped there is nothing to attach, so it waits
        referrer_mapped = any(is_referrer_source(m.source) for m in settings.mappings)
        attaching = settings.attach_referrer and referrer_mapped
        if self.attach_referrer.isChecked() != attaching:
            self.attach_referrer.setChecked(attaching)
        self.attach_referrer.setEnabled(referrer_mapped)
        self.attach_referrer.setToolTip("" if referrer_mapped else NOTHING_ABOUT_REFERRER)
        self.attach_hint.setText("" if referrer_mapped else NOTHING_ABOUT_REFERRER)
        self.attach_hint.setVisible(not referrer_mapped and self.attach_referrer.isVisibleTo(self))
        keep = [(m.target, m.label) for m in settings.mappings]
        for source, row in self.rows.items():
            current = next((m for m in settings.mappings if m.source == source), None)
            items = target_items(schema, settings.mode, keep)
            if [row.combo.itemData(i) for i in range(row.combo.count())] != [t for _x, t in items]:
                set_combo_items(row.combo, items, current.target if current else None)
            else:
                select_data(row.combo, current.target if current else None)
            referrer_off = is_referrer_source(source) and referrer_mapped and not settings.attach_referrer
            row.combo.setEnabled(schema is not None and not self._fetching and not referrer_off)
            row.combo.setToolTip("" if schema is not None else "Press Refresh to load your Pipedrive fields.")
            row.label.setEnabled(not referrer_off)
            row.issue.paths = tuple(
                f"mappings[{i}]" for i, m in enumerate(settings.mappings) if m.source == source
            )
        self._loading = False
        self._show_issues(self.draft.issues)

    def _attach_toggled(self, on: bool) -> None:
        if not self._loading:
            self.draft.set("attach_referrer", on)

    def _chosen(self, row: _MappingRow) -> None:
        if self._loading:
            return
        settings = self.draft.settings
        target = row.combo.currentData()
        label = target_name(target, self.draft.schema(), settings.mode, None) if target else None
        first_of_referrer = (
            target
            and is_referrer_source(row.source)
            and not any(is_referrer_source(m.source) for m in settings.mappings)
        )
        self.draft.set("mappings", with_source_mapped(settings.mappings, row.source, target, label))
        if first_of_referrer:
            self.draft.set("attach_referrer", True)  # the first field mapped for the referrer is meant to go

    def _show_issues(self, issues: list[Any]) -> None:
        self.required_issue.show_issues(issues)
        for row in self.rows.values():
            row.issue.show_issues(issues)


class TitleEditor(QWidget):
    """The lead/deal title: a template with suggestions, and what it gives for a sample sign-up."""

    def __init__(self, controller: AppController, draft: SettingsDraft, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.draft = draft
        self.combo = QComboBox()
        self.combo.setEditable(True)
        self.combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.combo.addItems(TITLE_SUGGESTIONS)
        self.combo.setAccessibleName("Title template")
        self.combo.editTextChanged.connect(self._edited)
        self.example = wrapped_label()
        self.issue = IssueLabel("title")
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.combo)
        column.addWidget(self.example)
        column.addWidget(self.issue)
        column.addWidget(
            hint_label(
                "Pipedrive needs a title for every lead and deal. Use placeholders such as "
                "{campaign_name}, {first_name}, {source} or {meta:<form field>}."
            )
        )
        draft.changed.connect(self._load)
        draft.issuesChanged.connect(self.issue.show_issues)
        self._load()
        self.issue.show_issues(draft.issues)

    def _edited(self, text: str) -> None:
        self.draft.set("title", text)

    def _load(self) -> None:
        title = self.draft.settings.title
        if self.combo.currentText() != title:
            self.combo.blockSignals(True)
            self.combo.setEditText(title)
            self.combo.blockSignals(False)
        sample = sample_referral(self.controller.account.cached_campaigns(), self.draft.settings)
        try:
            shown = mapping.render_title(title, mapping.referral_values(sample))
        except mapping.MappingError:
            shown = "—"
        self.example.setText(f"Example: {shown}")


class CreateFieldsBox(QGroupBox):
    """Shown while the Pipedrive account has no Referral Code field: creates it (and, if asked, the
    optional referral fields), fetches the fields again and maps them."""

    created = Signal()

    def __init__(self, controller: AppController, draft: SettingsDraft, parent: QWidget | None = None) -> None:
        super().__init__("The Referral Code field", parent)
        self.controller = controller
        self.draft = draft
        self.tasks = OwnedTasks(controller, self)
        self.also_optional = QCheckBox("Also create " + ", ".join(OPTIONAL_FIELDS))
        self.button = QPushButton("&Create the Referral Code field in Pipedrive")
        self.button.clicked.connect(self.start)
        self.busy = BusyIndicator("Creating the fields in Pipedrive…")
        self.panel = MessagePanel()
        column = QVBoxLayout(self)
        column.addWidget(
            wrapped_label(
                "Your Pipedrive account has no Referral Code field yet. rf-desktop writes each referral's "
                "code into it, which is how it recognises the lead or deal when it converts."
            )
        )
        column.addWidget(self.also_optional)
        row = QHBoxLayout()
        row.addWidget(self.button)
        row.addWidget(self.busy, 1)
        column.addLayout(row)
        column.addWidget(self.panel)
        controller.schemaChanged.connect(self.update_visibility)
        self.update_visibility()

    def update_visibility(self) -> None:
        schema = self.controller.schema()
        self.setVisible(
            (schema is not None and referral_code_field(schema) is None) or self.panel.kind == ERROR
        )

    def start(self) -> None:
        if not self.tasks.running("create"):
            self.tasks.spawn("create", self._create())

    async def _create(self) -> None:
        schema = self.controller.schema()
        existing = {f.name.casefold() for f in schema.deal_fields} if schema else set()
        names = [REFERRAL_CODE_FIELD]
        if self.also_optional.isChecked():
            names += [n for n in OPTIONAL_FIELDS if n.casefold() not in existing]
        self.button.setEnabled(False)
        self.busy.start()
        self.panel.clear()
        try:
            await self._create_and_map(names)
        except PROBLEMS as error:
            self.panel.show_message(ERROR, *problem_text(error))
        finally:
            self.busy.stop()
            self.button.setEnabled(True)
            self.update_visibility()

    async def _create_and_map(self, names: list[str]) -> None:
        try:
            await self.controller.account.create_referral_fields(names, self.draft.settings.pipedrive)
        finally:
            # even after a failure part way, the fields that were created are fetched and mapped
            schema = await refresh_schema(self.controller, self.draft)
            self.draft.edit(lambda s: auto_map_referral_fields(s, schema))
        self.panel.show_message(
            SUCCESS,
            f"Created {', '.join(names)} in Pipedrive and mapped {'it' if len(names) == 1 else 'them'}.",
        )
        self.created.emit()


# --- default values ---------------------------------------------------------------------------------------


class _FixedValueRow(QWidget):
    """One "always set this field to this value" row: a field, its value (options for enum/set fields)."""

    changed = Signal()
    removed = Signal(object)

    def __init__(self, schema: PipedriveSchema | None, mode: str, target: str | None, value: Any) -> None:
        super().__init__()
        self.schema = schema
        self.mode = mode
        self.field_combo = QComboBox()
        self.field_combo.setAccessibleName("Field with a fixed value")
        items = [
            ("Choose a field…", None),
            *target_items(schema, mode, [(target, None)] if target else [])[1:],
        ]
        set_combo_items(self.field_combo, items, target)
        self.field_combo.currentIndexChanged.connect(self._field_chosen)
        self.text = QLineEdit()
        self.text.setAccessibleName("Fixed value")
        self.text.textEdited.connect(lambda _t: self.changed.emit())
        self.option = QComboBox()
        self.option.setAccessibleName("Fixed value")
        self.option.currentIndexChanged.connect(lambda _i: self.changed.emit())
        self.options = QListWidget()
        self.options.setAccessibleName("Fixed values")
        self.options.setMaximumHeight(self.fontMetrics().height() * 6)
        self.options.itemChanged.connect(lambda _item: self.changed.emit())
        self.value_stack = QStackedWidget()
        for widget in (self.text, self.option, self.options):
            self.value_stack.addWidget(widget)
        remove = QPushButton("Remove")
        remove.setAccessibleName("Remove this fixed value")
        remove.clicked.connect(lambda: self.removed.emit(self))
        self.issue = IssueLabel()
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.field_combo, 2)
        row.addWidget(self.value_stack, 3)
        row.addWidget(remove, 0, Qt.AlignmentFlag.AlignTop)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(row)
        column.addWidget(self.issue)
        self._show_editor(value)

    @property
    def target(self) -> str | None:
        data = self.field_combo.currentData()
        return str(data) if data else None

    def field_def(self) -> FieldDef | None:
        return self.schema.field(self.target, self.mode) if self.schema and self.target else None

    def value(self) -> Any:
        """Text, an option label (enum) or a list of option labels (set); config stores labels."""
        current = self.value_stack.currentWidget()
        if current is self.option:
            return self.option.currentData()
        if current is self.options:
            items = [self.options.item(i) for i in range(self.options.count())]
            return [i.text() for i in items if i.checkState() == Qt.CheckState.Checked]
        return self.text.text()

    def _field_chosen(self) -> None:
        self._show_editor(None)
        self.changed.emit()

    def _show_editor(self, value: Any) -> None:
        field_def = self.field_def()
        kind = field_def.field_type if field_def else ""
        labels = [o.label for o in field_def.options] if field_def else []
        if kind == "enum":
            set_combo_items(
                self.option, [(label, label) for label in labels], value if value in labels else None
            )
            self.value_stack.setCurrentWidget(self.option)
        elif kind == "set":
            chosen = set(value) if isinstance(value, list) else set()
            self.options.blockSignals(True)
            self.options.clear()
            for label in labels:
                item = QListWidgetItem(label)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked if label in chosen else Qt.CheckState.Unchecked)
                self.options.addItem(item)
            self.options.blockSignals(False)
            self.value_stack.setCurrentWidget(self.options)
        else:
            self.text.setText("" if value is None or isinstance(value, list) else str(value))
            self.value_stack.setCurrentWidget(self.text)


class DefaultsEditor(QGroupBox):
    """Values every new lead or deal gets: owner, labels, value and currency, visibility, fixed fields."""

    def __init__(self, draft: SettingsDraft, parent: QWidget | None = None) -> None:
        super().__init__("Default values for new leads and deals", parent)
        self.draft = draft
        self._loading = False
        self.owner = QComboBox()
        self.owner.currentIndexChanged.connect(
            lambda _i: self._set("defaults.owner_id", self.owner.currentData())
        )
        self.labels = QListWidget()
        self.labels.setAccessibleName("Labels")
        self.labels.setMaximumHeight(self.fontMetrics().height() * 7)
        self.labels.itemChanged.connect(lambda _item: self._labels_edited())
        self.value = QLineEdit()
        self.value.setValidator(QDoubleValidator(0.0, 1e12, 2, self.value))
        self.value.setPlaceholderText("No value")
        self.value.textEdited.connect(self._value_edited)
        self.currency = QComboBox()
        self.currency.setEditable(True)
        self.currency.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.currency.setAccessibleName("Currency")
        self.currency.editTextChanged.connect(self._currency_edited)
        self.visible_to = QComboBox()
        set_combo_items(
            self.visible_to,
            [
                ("Pipedrive's default", None),
                *((name, level) for level, name in mapping.VISIBILITY_NAMES.items()),
            ],
            None,
        )
        self.visible_to.currentIndexChanged.connect(
            lambda _i: self._set("defaults.visible_to", self.visible_to.currentData())
        )
        money = QHBoxLayout()
        money.addWidget(self.value, 2)
        money.addWidget(self.currency, 1)
        self.fixed_rows: list[_FixedValueRow] = []
        self.fixed_column = QVBoxLayout()
        self.add_button = QPushButton("Add a &fixed value…")
        self.add_button.clicked.connect(lambda: self._add_row(None, None))
        self.issues = {
            path: IssueLabel(path)
            for path in (
                "defaults.owner_id",
                "defaults.label_ids",
                "defaults.value",
                "defaults.currency",
                "defaults.visible_to",
            )
        }
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        for text, widget, path in (
            ("Lead/deal &owner:", self.owner, "defaults.owner_id"),
            ("&Labels:", self.labels, "defaults.label_ids"),
            ("&Value:", money, "defaults.value"),
            ("&Visible to:", self.visible_to, "defaults.visible_to"),
        ):
            cell = QVBoxLayout()
            add_to(cell, widget)
            cell.addWidget(self.issues[path])
            if path == "defaults.value":
                cell.addWidget(self.issues["defaults.currency"])
            buddy = self.value if path == "defaults.value" else widget
            form.addRow(buddy_label(text, buddy), cell)
        column = QVBoxLayout(self)
        column.addLayout(form)
        column.addWidget(QLabel("Fixed values for other fields:"))
        column.addLayout(self.fixed_column)
        column.addWidget(self.add_button, 0, Qt.AlignmentFlag.AlignLeft)
        draft.changed.connect(self._load)
        draft.issuesChanged.connect(self._show_issues)
        draft.controller.schemaChanged.connect(self._reload)
        self._reload()
        self._show_issues(draft.issues)

    def _set(self, path: str, value: Any) -> None:
        if not self._loading:
            self.draft.set(path, value)

    def _value_edited(self, text: str) -> None:
        try:
            amount = float(text.replace(",", ".")) if text.strip() else None
        except ValueError:
            return
        self._set("defaults.value", amount)

    def _currency_edited(self, text: str) -> None:
        code = text.strip().upper() or None
        self._set("defaults.currency", code)

    def _labels_edited(self) -> None:
        items = [self.labels.item(i) for i in range(self.labels.count())]
        chosen = [i.data(Qt.ItemDataRole.UserRole) for i in items if i.checkState() == Qt.CheckState.Checked]
        self._set("defaults.label_ids", chosen)

    def _reload(self) -> None:
        """The Pipedrive fields changed: the fixed-value rows offer other fields and options."""
        self._fill(rebuild=True)

    def _load(self) -> None:
        self._fill(rebuild=False)

    def _fill(self, rebuild: bool) -> None:
        settings = self.draft.settings
        schema = self.draft.schema()
        defaults = settings.defaults
        self._loading = True
        users = schema.users if schema else ()
        owners = [(CONNECTED_USER, None), *((u.name, u.id) for u in users)]
        if defaults.owner_id is not None and all(u.id != defaults.owner_id for u in users):
            owners.append((f"User {defaults.owner_id} (not found)", defaults.owner_id))
        set_combo_items(self.owner, owners, defaults.owner_id)
        self._load_labels(settings, schema)
        if self._value_text(defaults.value) != self.value.text():
            self.value.setText(self._value_text(defaults.value))
        currencies = list(
            dict.fromkeys(
                c
                for c in ("", schema.default_currency if schema else None, "EUR", "USD", "GBP")
                if c is not None
            )
        )
        if [self.currency.itemText(i) for i in range(self.currency.count())] != currencies:
            self.currency.clear()
            self.currency.addItems(currencies)
        if self.currency.currentText() != (defaults.currency or ""):
            self.currency.setEditText(defaults.currency or "")
        default_currency = schema.default_currency if schema else None
        self.currency.lineEdit().setPlaceholderText(
            f"{default_currency} (default)" if default_currency else "EUR"
        )
        select_data(self.visible_to, defaults.visible_to)
        if rebuild or self._collect() != defaults.fields:
            self._rebuild_rows(defaults.fields)
        self._loading = False

    @staticmethod
    def _value_text(value: float | None) -> str:
        return "" if value is None else (str(int(value)) if value.is_integer() else str(value))

    def _load_labels(self, settings: Settings, schema: PipedriveSchema | None) -> None:
        if schema is None:
            options: list[tuple[str, Any]] = []
        elif settings.mode == "lead":
            options = [(label.name, label.id) for label in schema.lead_labels]
        else:
            options = [(option.label, option.id) for option in schema.deal_labels()]
        chosen = set(settings.defaults.label_ids)
        current = [
            (self.labels.item(i).text(), self.labels.item(i).data(Qt.ItemDataRole.UserRole))
            for i in range(self.labels.count())
        ]
        self.labels.blockSignals(True)
        if current != options:
            self.labels.clear()
            for text, label_id in options:
                item = QListWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, label_id)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                self.labels.addItem(item)
        for i in range(self.labels.count()):
            item = self.labels.item(i)
            checked = item.data(Qt.ItemDataRole.UserRole) in chosen
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
        self.labels.blockSignals(False)

    def _collect(self) -> dict[str, Any]:
        return {row.target: row.value() for row in self.fixed_rows if row.target}

    def _rebuild_rows(self, fields: dict[str, Any]) -> None:
        for row in self.fixed_rows:
            row.deleteLater()
        self.fixed_rows = []
        for target, value in fields.items():
            self._add_row(target, value)

    def _add_row(self, target: str | None, value: Any) -> None:
        row = _FixedValueRow(self.draft.schema(), self.draft.settings.mode, target, value)
        row.changed.connect(self._rows_edited)
        row.removed.connect(self._remove_row)
        self.fixed_rows.append(row)
        self.fixed_column.addWidget(row)
        self._show_issues(self.draft.issues)
        if target is None:
            row.field_combo.setFocus()

    def _remove_row(self, row: _FixedValueRow) -> None:
        self.fixed_rows.remove(row)
        row.deleteLater()
        self._rows_edited()

    def _rows_edited(self) -> None:
        self._set("defaults.fields", self._collect())

    def _show_issues(self, issues: list[Any]) -> None:
        for label in self.issues.values():
            label.show_issues(issues)
        for row in self.fixed_rows:
            row.issue.paths = (f"defaults.fields[{row.target}]",) if row.target else ()
            row.issue.show_issues(issues)


# --- duplicates and preview -------------------------------------------------------------------------------

DUPLICATE_CHOICES = (
    (
        "update",
        "&Update the existing Pipedrive person",
        "The person's email (and phone) are added and the mapped fields are overwritten with what the friend "
        "entered in Referral Factory. This may replace details your sales team typed in.",
    ),
    (
        "keep",
        "&Leave the existing person untouched",
        "Nothing on the person changes. Your team's notes and details stay exactly as they are.",
    ),
)


class DuplicatesChooser(QGroupBox):
    """What happens when the email of a new referral already belongs to a Pipedrive person."""

    def __init__(self, draft: SettingsDraft, parent: QWidget | None = None) -> None:
        super().__init__("When the person is already in Pipedrive", parent)
        self.draft = draft
        self.group = QButtonGroup(self)
        self.buttons: dict[str, QRadioButton] = {}
        column = QVBoxLayout(self)
        for value, text, explanation in DUPLICATE_CHOICES:
            button = QRadioButton(text)
            self.group.addButton(button)
            self.buttons[value] = button
            button.toggled.connect(lambda on, v=value: self._toggled(v, on))
            column.addWidget(button)
            column.addWidget(hint_label(explanation))
        column.addWidget(
            hint_label(
                "Either way the new lead or deal is linked to the existing person, and qualification works "
                "the same, because the Referral Code travels on the lead or deal."
            )
        )
        draft.changed.connect(self._load)
        self._load()

    def _toggled(self, value: str, on: bool) -> None:
        if on:
            self.draft.set("duplicates", value)

    def _load(self) -> None:
        button = self.buttons[self.draft.settings.duplicates]
        if not button.isChecked():
            button.setChecked(True)


SAMPLE = "sample"


class PreviewPanel(QGroupBox):
    """A dry run: the person and the lead or deal one referral would create, value by value, before
    anything is sent."""

    def __init__(self, controller: AppController, draft: SettingsDraft, parent: QWidget | None = None) -> None:
        super().__init__("Preview", parent)
        self.controller = controller
        self.draft = draft
        self.referral = QComboBox()
        self.referral.setAccessibleName("Referral to preview")
        self.referral.currentIndexChanged.connect(lambda _i: self.update_preview())
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Pipedrive field", "Value", "From Referral Factory"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.panel = MessagePanel()
        column = QVBoxLayout(self)
        column.addWidget(hint_label("What would be created in Pipedrive for one sign-up. Nothing is sent."))
        column.addWidget(buddy_label("&Sign-up:", self.referral))
        column.addWidget(self.referral)
        column.addWidget(self.panel)
        column.addWidget(self.table)
        # while the sync runs, referrals change many times a second: list them again at most once a
        # second, and only while the list can be seen
        self._stale = False
        self._relist = QTimer(self)
        self._relist.setSingleShot(True)
        self._relist.setInterval(1000)
        self._relist.timeout.connect(self.reload_referrals)
        draft.changed.connect(self.update_preview)
        controller.schemaChanged.connect(self.update_preview)
        controller.referralsChanged.connect(self._referrals_changed)
        self.reload_referrals()

    def _referrals_changed(self, _rf_user_ids: frozenset[int]) -> None:
        if self.isVisible():
            if not self._relist.isActive():
                self._relist.start()
        else:
            self._stale = True

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._stale:
            self.reload_referrals()

    def reload_referrals(self) -> None:
        if self.controller.closed:
            return  # the store is closing
        self._stale = False
        chosen = self.referral.currentData()
        referrals = self.controller.store.query(limit=50)
        items: list[tuple[str, Any]] = [("A sample sign-up", SAMPLE)]
        items += [
            (f"{r.first_name or r.email} <{r.email}> ({r.campaign_name})", r.rf_user_id) for r in referrals
        ]
        set_combo_items(self.referral, items, chosen if chosen is not None else SAMPLE)
        if self.referral.currentIndex() < 0:
            self.referral.setCurrentIndex(0)
        self.update_preview()

    def chosen_referral(self) -> Referral:
        data = self.referral.currentData()
        found = self.controller.store.get(data) if data not in (None, SAMPLE) else None
        return found or sample_referral(self.controller.account.cached_campaigns(), self.draft.settings)

    def update_preview(self) -> None:
        schema = self.draft.schema()
        if schema is None:
            self.table.setRowCount(0)
            self.panel.show_message(WARNING, "Load your Pipedrive fields (Refresh) to see the preview.")
            return
        result = mapping.preview(self.chosen_referral(), self.draft.settings, schema)
        self.table.setRowCount(len(result.rows))
        for line, row in enumerate(result.rows):
            problem = next((e for e in result.errors if f"'{row.field.partition(': ')[2]}'" in e), None)
            for column, text in enumerate((row.field, row.value, row.source)):
                cell = QTableWidgetItem(text)
                if problem:
                    cell.setForeground(QBrush(issue_colour(ERROR)))
                    cell.setToolTip(problem)
                self.table.setItem(line, column, cell)
        self.table.resizeRowsToContents()
        if result.errors:
            self.panel.show_message(
                ERROR, "This sign-up could not be sent as it is:", "\n".join(result.errors)
            )
        else:
            record = "lead" if self.draft.settings.mode == "lead" else "deal"
            self.panel.show_message(SUCCESS, f"This sign-up would create a person and a {record} as shown.")


# --- the page ---------------------------------------------------------------------------------------------


class MappingPage(DraftPage):
    title = "Mapping"
    icon_name = "mapping"

    def __init__(self, controller: AppController, parent: QWidget | None = None) -> None:
        super().__init__(controller, parent)
        self.refresh_button = QPushButton("&Refresh Pipedrive fields")
        self.refresh_button.setToolTip(
            "Fetch the fields, pipelines and stages again (after a change in Pipedrive)"
        )
        self.refresh_button.clicked.connect(self.refresh)
        self.busy = BusyIndicator("Fetching your Pipedrive fields…")
        self.fetched = hint_label("")
        self.error_panel = MessagePanel()
        top = QHBoxLayout()
        top.addWidget(self.refresh_button)
        top.addWidget(self.busy)
        top.addWidget(self.fetched, 1)
        self.create_fields = CreateFieldsBox(controller, self.draft)
        self.grid = MappingGrid(controller, self.draft)
        self.title_editor = TitleEditor(controller, self.draft)
        fields_box = QGroupBox("Fields")
        fields_column = QVBoxLayout(fields_box)
        fields_column.addWidget(self.grid)
        title_row = QFormLayout()
        title_row.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        title_row.addRow(buddy_label("&Title (Lead/Deal) *:", self.title_editor.combo), self.title_editor)
        fields_column.addLayout(title_row)
        self.defaults = DefaultsEditor(self.draft)
        self.duplicates = DuplicatesChooser(self.draft)
        self.preview = PreviewPanel(controller, self.draft)
        self.body.addLayout(top)
        for widget in (
            self.error_panel,
            self.create_fields,
            fields_box,
            self.defaults,
            self.duplicates,
            self.preview,
        ):
            self.body.addWidget(widget)
        self.body.addStretch(1)
        controller.schemaLoading.connect(self._loading)
        controller.schemaChanged.connect(self._show_fetched)
        controller.schemaChanged.connect(self._preselect_referral_code)
        self._show_fetched()
        self._preselect_referral_code()
        self._first_show = True

    def _preselect_referral_code(self) -> None:
        """An account that already has a Referral Code field gets it chosen, rather than asked for."""
        schema = self.controller.schema()
        self.draft.edit(lambda s: preselect_referral_code(s, schema))

    def refresh(self) -> None:
        self.tasks.spawn("refresh", self._refresh())

    async def _refresh(self) -> None:
        self.error_panel.clear()
        try:
            await refresh_schema(self.controller, self.draft)
            await self._refresh_campaign_fields()
        except PROBLEMS as error:
            self.error_panel.show_message(ERROR, *problem_text(error))

    async def _refresh_campaign_fields(self) -> None:
        """The chosen campaigns' form fields, for the left column."""
        if not await self.controller.account.load_campaign_fields(self.draft.settings):
            return
        self.grid.refresh_sources()

    def _loading(self, loading: bool) -> None:
        self.refresh_button.setEnabled(not loading)
        self.grid.set_loading(loading)
        self.busy.set_busy(loading)

    def _show_fetched(self) -> None:
        schema = self.controller.schema()
        if schema is None:
            self.fetched.setText("Your Pipedrive fields have not been loaded yet.")
        else:
            self.fetched.setText(f"Pipedrive fields as of {schema.fetched_at.replace('T', ' ')[:16]} UTC.")

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._first_show and self.controller.schema() is None:
            self.refresh()
        self._first_show = False
