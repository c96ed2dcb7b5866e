/** The browser pages of Latchkey, one file per page; this module gathers them for the routes. */
export { renderApiKeyForm, type ApiKeyFormModel } from './api-key-form';
export { renderConnectPage, type ConnectionRow, type ConnectPageModel, type FlowResult } from './connect-page';
export { renderErrorPage, type ErrorPageOptions } from './error-page';
export { describeError, errorTextFor, type ErrorText } from './error-text';
export { renderPopupResult, type PopupMessage, type PopupResultModel } from './popup-result';
