"""User ids taken from URLs follow the same rule as a token's subject."""

import pytest
from rest_framework.exceptions import ValidationError

from accounts.principals import MAX_USER_ID_LENGTH, validated_user_id


@pytest.mark.parametrize("user_id", ["alice", "x" * MAX_USER_ID_LENGTH, "42", "юзер"])
def test_a_user_id_that_fits_the_column_is_accepted(user_id):
    assert validated_user_id(user_id) == user_id


@pytest.mark.parametrize("user_id", ["", "   ", "a\x00b", "a\tb", "x" * (MAX_USER_ID_LENGTH + 1)], ids=repr)
def test_a_user_id_no_account_could_have_is_refused_as_a_field_error(user_id):
    with pytest.raises(ValidationError) as refused:
        validated_user_id(user_id)
    assert list(refused.value.detail) == ["user_id"]
