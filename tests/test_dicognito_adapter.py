"""What dicognito_adapter.py relies on inside dicognito 0.19.0: each test names one internal, so an upgrade that
moves or renames it fails here, with its name, rather than somewhere in a session's output.

The adapter uses, besides the public Anonymizer(seed=...) and add_element_handler():
- Anonymizer._element_handlers (the chain the fast path is built from), _anonymize_element (one element
  through the chain) and _dataset_updaters (run after the walk), to walk without decoding untouched elements;
- what each handler selects: IDAnonymizer.id_tags / issuer_tag, AddressAnonymizer._value_factories,
  EquipmentAnonymizer._element_anonymizers, FixedValueAnonymizer.tag, ValueKeeper._tag,
  UnwantedElementsStripper.tags; and that UIAnonymizer, PNAnonymizer and DateTimeAnonymizer select by VR only;
- AddressAnonymizer's get_street_address / get_region / get_country, for an InstitutionAddress alone;
- DateTimeAnonymizer.offset (a timedelta), set per subject before each dataset is walked.
"""

from __future__ import annotations

from importlib.metadata import version

import pydicom
import pytest
from dicognito.addressanonymizer import AddressAnonymizer
from dicognito.anonymizer import Anonymizer
from dicognito.datetimeanonymizer import DateTimeAnonymizer
from dicognito.equipmentanonymizer import EquipmentAnonymizer
from dicognito.fixedvalueanonymizer import FixedValueAnonymizer
from dicognito.idanonymizer import IDAnonymizer
from dicognito.pnanonymizer import PNAnonymizer
from dicognito.randomizer import Randomizer
from dicognito.uianonymizer import UIAnonymizer
from dicognito.unwantedelements import UnwantedElementsStripper
from dicognito.value_keeper import ValueKeeper
from pydicom.data import get_testdata_file

from dicom_deid.dicognito_adapter import DicognitoAnonymizer, SkipUntouched

SEED = "0123456789abcdef0123456789abcdef"


def test_the_pinned_version_is_the_one_these_facts_were_read_from():
    assert version("dicognito") == "0.19.0", "re-read every internal below against the new version's source"


def test_anonymizer_keeps_its_handler_chain_and_updaters_where_the_adapter_reads_them():
    anonymizer = Anonymizer(seed=SEED)
    assert isinstance(anonymizer._element_handlers, list) and anonymizer._element_handlers
    assert callable(anonymizer._anonymize_element)
    assert all(callable(updater) for updater in anonymizer._dataset_updaters)


def test_every_default_handler_is_of_a_kind_the_fast_path_knows():
    # An unknown kind turns the fast path off (slower, still correct): this test says which kind appeared.
    known = (
        UnwantedElementsStripper,
        UIAnonymizer,
        PNAnonymizer,
        IDAnonymizer,
        AddressAnonymizer,
        EquipmentAnonymizer,
        FixedValueAnonymizer,
        DateTimeAnonymizer,
    )
    unknown = [type(h).__name__ for h in Anonymizer(seed=SEED)._element_handlers if not isinstance(h, known)]
    assert unknown == []
    assert DicognitoAnonymizer(SEED, "per_subject").fast_path is not None


def test_handlers_expose_what_they_select():
    handlers = {type(h): h for h in Anonymizer(seed=SEED)._element_handlers}
    ids = handlers[IDAnonymizer]
    assert pydicom.datadict.tag_for_keyword("PatientID") in ids.id_tags and ids.issuer_tag
    assert set(handlers[AddressAnonymizer]._value_factories) >= {pydicom.datadict.tag_for_keyword("PatientAddress")}
    assert pydicom.datadict.tag_for_keyword("InstitutionName") in handlers[EquipmentAnonymizer]._element_anonymizers
    assert handlers[FixedValueAnonymizer].tag
    assert handlers[UnwantedElementsStripper].tags
    assert ValueKeeper("StudyDate")._tag == pydicom.datadict.tag_for_keyword("StudyDate")


@pytest.mark.parametrize("method", ["get_street_address", "get_region", "get_country"])
def test_address_parts_are_public_enough_to_replace_a_lone_institution_address(method):
    value = getattr(AddressAnonymizer(Randomizer(SEED)), method)("1 Main Street")
    assert isinstance(value, str) and value


def test_the_fast_path_changes_no_output_of_a_real_file():
    # The fast path walks with _anonymize_element and runs _dataset_updaters itself; dicognito's own
    # anonymize() must give the same dataset (the full packaged-file comparison is in test_anonymize.py).
    fast, slow = DicognitoAnonymizer(SEED, "per_subject"), DicognitoAnonymizer(SEED, "per_subject", fast_path=False)
    first, second = (pydicom.dcmread(get_testdata_file("CT_small.dcm")) for _ in range(2))
    fast.anonymize(first)
    slow.anonymize(second)
    assert first == second


def test_an_unknown_handler_turns_the_fast_path_off():
    class Custom:
        pass

    assert SkipUntouched.for_handlers([Custom()]) is None


def test_the_date_anonymizer_holds_one_offset_the_adapter_can_set_per_subject():
    import datetime

    dates = next(h for h in Anonymizer(seed=SEED)._element_handlers if isinstance(h, DateTimeAnonymizer))
    assert isinstance(dates.offset, datetime.timedelta)
    dataset = pydicom.Dataset()
    dataset.StudyDate, dataset.StudyTime = "20200115", "120000"
    dates.offset = datetime.timedelta(days=-100)
    dates(dataset, dataset["StudyDate"])
    assert dataset.StudyDate == "20191007"
